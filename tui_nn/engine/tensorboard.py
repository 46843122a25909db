"""Metrics as TensorBoard event files, for `tensorboard --logdir runs`.

Optional: only when the `tensorboard` package is installed (`pip install tui-nn[tensorboard]`);
make_tensorboard_sink returns None otherwise, so callers need no checks of their own. The sink
is one more event consumer beside metrics.jsonl and never stops training: a failure to write
disables it and is kept in `error`.

Event files go straight into the run directory, so `tensorboard --logdir runs` names each run
after its directory. Every scalar is indexed by the global step, epoch ones included, so train
and validation curves share an axis:

  train/loss            every step's loss
  train/lr              learning rate, at each report
  train/epoch_loss      mean training loss of each epoch
  val/loss, val/<metric>  (val/accuracy or val/mse) at each epoch end
  perf/samples_per_s    training throughput, at each report
  perf/memory_mib       device memory in use (CUDA/MPS), at each report
  step/<name>           every other scalar logged with the steps (a GAN's d_loss), at each report
  epoch/<name>          every other scalar logged with the epochs, at each epoch end
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from tui_nn.engine import events as ev
from tui_nn.engine import schema

# SummaryWriter buffers events; a run watched live wants them on disk within seconds.
_FLUSH_SECS = 5


def _quiet_writer_thread_errors() -> None:
    """SummaryWriter writes from a thread that re-raises its OSError (a full disk) into
    threading.excepthook, which prints a traceback mid-training. The sink learns of the error
    at its next write and says so in one line, so that thread's traceback is dropped; every
    other thread's exception still goes to the previous hook."""
    import threading
    previous = threading.excepthook
    if getattr(previous, "_tui_nn_quiet", False):
        return

    def hook(args: Any) -> None:
        thread = getattr(args, "thread", None)
        if type(thread).__name__ == "_AsyncWriterThread" and isinstance(args.exc_value, OSError):
            return
        previous(args)

    hook._tui_nn_quiet = True  # type: ignore[attr-defined]
    threading.excepthook = hook


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def make_tensorboard_sink(run_dir: str | Path | None = None) -> "TensorBoardSink | None":
    """A sink writing into run_dir (or the run directory announced by RunStarted), or None
    when the tensorboard package is not installed."""
    if not tensorboard_available():
        return None
    _quiet_writer_thread_errors()
    return TensorBoardSink(run_dir)


class TensorBoardSink:
    """Callable event consumer: sink(event) for every engine event, close() at the end."""

    def __init__(self, run_dir: str | Path | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.error: str | None = None
        self._writer: Any = None
        self._closed = False

    def __call__(self, event: ev.Event) -> None:
        if self.error is not None:
            return
        if self._closed:
            # Finished/Failed closed the file; only a new session (a resume) opens another.
            if not isinstance(event, ev.RunStarted):
                return
            self._closed = False
        try:
            self._write(event)
        except Exception as e:  # noqa: BLE001 - logging must never end a training run
            self.error = f"TensorBoard logging stopped: {type(e).__name__}: {e}"
            self.close()

    def _open(self, start_step: int = 0) -> Any:
        if self._writer is None and self.run_dir is not None:
            from torch.utils.tensorboard import SummaryWriter
            # A resumed run redoes the steps after its checkpoint: purge_step hides the old
            # values of those steps so the curve shows each step once.
            self._writer = SummaryWriter(log_dir=str(self.run_dir), flush_secs=_FLUSH_SECS,
                                         purge_step=start_step + 1 if start_step else None)
        return self._writer

    def _write(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            if self.run_dir is None and event.run_dir:
                self.run_dir = Path(event.run_dir)
            if self._writer is not None:  # a resumed session in a replayed log
                self._writer.close()
                self._writer = None
            w = self._open(event.start_step)
            if w is not None:
                w.add_text("run", _run_markdown(event), global_step=event.start_step)
        elif isinstance(event, ev.StepMetrics):
            w = self._open()
            if w is None:
                return
            for i, loss in enumerate(event.losses):
                w.add_scalar("train/loss", loss, event.first_step + i)
            w.add_scalar("train/lr", event.lr, event.step)
            w.add_scalar("perf/samples_per_s", event.samples_per_s, event.step)
            if event.memory_bytes is not None:
                w.add_scalar("perf/memory_mib", event.memory_bytes / 2**20, event.step)
            _add_scalars(w, "step", event.scalars, event.step)
        elif isinstance(event, ev.EpochMetrics):
            w = self._open()
            if w is None:
                return
            w.add_scalar("train/epoch_loss", event.train_loss, event.step)
            w.add_scalar("val/loss", event.val_loss, event.step)
            w.add_scalar(f"val/{event.metric}", event.value, event.step)
            _add_scalars(w, "epoch", event.scalars, event.step)
            w.flush()  # epochs are rare and the ones worth seeing at once
        elif isinstance(event, (ev.Finished, ev.Failed)):
            self.close()

    def close(self) -> None:
        """Flush and close the event file. Safe to call twice."""
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception as e:  # noqa: BLE001
                self.error = self.error or f"TensorBoard logging failed on close: {e}"


def _add_scalars(writer: Any, group: str, scalars: dict[str, Any], step: int) -> None:
    for name, value in scalars.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            writer.add_scalar(f"{group}/{name}", value, step)


def _run_markdown(e: ev.RunStarted) -> str:
    rows = [("model", e.model), ("dataset", e.dataset), ("device", e.device_name),
            ("task", e.task), ("parameters", f"{e.parameters:,}"), ("epochs", e.epochs),
            ("batch size", e.batch_size), ("train / val", f"{e.n_train:,} / {e.n_val:,}")]
    if e.start_step:
        rows.append(("resumed at step", e.start_step))
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def replay_metrics(run_dir: str | Path, log_dir: str | Path | None = None) -> int:
    """Write TensorBoard event files for a recorded run (one trained without tensorboard
    installed) into log_dir, default the run directory. Returns the number of events fed;
    raises RuntimeError when writing failed."""
    from tui_nn.engine.rundir import read_metrics
    sink = TensorBoardSink(log_dir if log_dir is not None else run_dir)
    count = 0
    for record in read_metrics(run_dir):
        event = schema.decode(record)
        if event is not None:
            sink(event)
            count += 1
    sink.close()
    if sink.error:
        raise RuntimeError(sink.error)
    return count
