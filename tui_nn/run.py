"""tui_nn.Run: the run directory of tui-nn's Trainer, written from any training loop.

    with tui_nn.Run("runs/mine", model="my-net", dataset="shards-v2", config={...},
                    metric="accuracy") as run:
        for step, batch in enumerate(loader):
            ...
            run.log_step(loss=loss, lr=opt.param_groups[0]["lr"])
            run.wait_while_paused()          # returns at once unless paused from watch/control
            if run.stop_requested: break
            if run.checkpoint_requested: save(...); run.checkpoint_saved("ckpt.pt")
        run.log_epoch(val_loss=..., accuracy=...)

It writes what the Trainer writes (config.json, metrics.jsonl with RunStarted, StepMetrics,
EpochMetrics, Finished, or Failed when the block raises; the lock; the control channel), so
`tui-nn runs`, `watch`, `control`, `export` and the app's runs screen work unchanged. A request
from outside is taken only once the loop acts on it (polls its flag; for lr, calls
run.apply_lr(optimizer, scheduler) or passes optimizer=/scheduler= to Run); the others are
refused with the reason. Sizes the loop does not give (epochs, batch_size, an lr) are recorded
as 0 / NaN, which the viewers leave out.

Torch-free: importing it (or `tui_nn`) loads no torch, textual or rich. log_step is cheap: it
appends to a list and writes a record at most every `report_interval_s`; a loss given as a
tensor (0-d, on any device) is read back only then, in one go, as the Trainer does.
Under torchrun only rank 0 writes; the other ranks' calls do nothing.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from tui_nn.engine import events as ev
from tui_nn.engine.controls import Controls, scale_lrs
from tui_nn.engine.rundir import RunDir, new_run_path
from tui_nn.fmt import higher_is_better

# Losses per StepMetrics record: a float takes at most 25 bytes of JSON, so a record stays far
# under jsonl.MAX_LINE_BYTES (1 MB), which every reader of metrics.jsonl skips past.
STEPS_PER_RECORD = 10_000
_MAX_MESSAGE = 10_000  # characters of a Failed message kept (the traceback: _MAX_TRACEBACK)
_MAX_TRACEBACK = 100_000  # at most 6 bytes each once JSON-escaped: under the limit too

class Run(Controls):
    """One run of a hand-written loop (see the module docstring). Steerable from `tui-nn
    control` / `watch` while inside the `with` block."""

    def __init__(self, run_dir: str | Path | None = None, *, model: str = "model",
                 dataset: str = "-", config: dict[str, Any] | None = None,
                 metric: str | None = None, mode: str | None = None, epochs: int = 0,
                 steps_per_epoch: int = 0, batch_size: int = 0, runs_root: str | Path = "runs",
                 report_interval_s: float = 1.0, optimizer: Any = None, scheduler: Any = None,
                 honours: tuple[str, ...] | None = None) -> None:
        Controls.__init__(self)
        self.model, self.dataset = str(model), str(dataset)
        self.config = dict(config or {})
        self.metric = metric or "val_loss"
        self.higher_is_better = (mode == "max") if mode else higher_is_better(self.metric)
        self.epochs, self.steps_per_epoch, self.batch_size = epochs, steps_per_epoch, batch_size
        self.report_interval_s = report_interval_s
        self.enabled = os.environ.get("RANK", "0") == "0"  # torchrun: rank 0 speaks
        # Named now (to show before the run starts); an automatic name is claimed, with mkdir,
        # only on entering: two loops started in the same second get two directories.
        self._auto_root = None if run_dir is not None else Path(runs_root)
        self.path = Path(run_dir) if run_dir is not None else new_run_path(runs_root,
                                                                         self.model, self.dataset)
        self.step = 0  # steps logged
        self.epoch = 0  # epochs logged
        self.best_value: float | None = None
        self.last_value: float | None = None
        self._run_dir: RunDir | None = None
        self._closed = False  # the with block ended: nothing is written after Finished/Failed
        self._channel = None
        self._pending: list[Any] = []  # losses since the last record (floats or tensors)
        self._scalars: dict[str, Any] = {}
        self._lr: Any = math.nan  # not given: recorded as NaN, shown as absent
        self._epoch_losses: list[float] = []
        # With an optimizer (and its scheduler) log_step applies lr requests itself.
        self._optimizer, self._scheduler = optimizer, scheduler
        # The requests the loop acts on: learnt as it polls them, or fixed by `honours` (the
        # framework callbacks: all, or none under DDP).
        self._honoured = set(honours or ()) | ({"lr"} if optimizer is not None else set())
        self._learns = honours is None
        self._write_lock = threading.Lock()
        self._t0 = self._window_t0 = self._epoch_t0 = 0.0
        self._next_flush = 0.0

    # ---- the with block ----------------------------------------------------------------------
    def __enter__(self) -> "Run":
        if not self.enabled:
            return self
        if self._auto_root is not None:
            self._run_dir = RunDir.new(self._auto_root, self.model, self.dataset)
            self.path = self._run_dir.path
        else:
            self._run_dir = RunDir.create(self.path)
        self._run_dir.write_config(self._config_record())
        self._t0 = self._window_t0 = self._epoch_t0 = time.monotonic()
        self._next_flush = self._t0 + self.report_interval_s
        self._emit(ev.RunStarted(
            run_dir=str(self.path), model=self.model, dataset=self.dataset,
            device=str(self.config.get("device", "-")), device_name=str(
                self.config.get("device", "your loop")), task=str(self.config.get("task", "-")),
            metric=self.metric, n_train=int(self.config.get("n_train", 0) or 0),
            n_val=int(self.config.get("n_val", 0) or 0), epochs=self.epochs,
            batch_size=self.batch_size, steps_per_epoch=self.steps_per_epoch,
            total_steps=self.epochs * self.steps_per_epoch,
            parameters=int(self.config.get("parameters", 0) or 0)))
        from tui_nn.engine.channel import ControlServer
        try:
            self._channel = ControlServer(self.path, self).start()
        except OSError as e:  # no sockets here: the run is logged, not steerable
            self._emit(ev.Notice(f"no control channel: {e.strerror or e}", "tui_nn.Run"))
        return self

    def __exit__(self, kind, error, tb) -> bool:
        if not self.enabled or self._run_dir is None or self._closed:
            return False
        own = None  # the pending values could not be read back: the run failed with that
        try:
            try:
                self._flush()
            except Exception as e:
                own = e
                if error is None or isinstance(error, KeyboardInterrupt):
                    kind, error, tb = type(e), e, e.__traceback__
            if error is None or isinstance(error, KeyboardInterrupt):
                self._emit(ev.Finished(
                    status="stopped" if (self._stop.is_set() or error) else "finished",
                    run_dir=str(self.path), epochs_done=self.epoch, step=self.step,
                    metric=self.metric, best_value=self.best_value,
                    last_value=self.last_value, elapsed_s=time.monotonic() - self._t0))
            else:
                trace = "".join(traceback.format_exception(kind, error, tb))
                self._emit(ev.Failed(
                    message=f"{type(error).__name__}: {error}"[:_MAX_MESSAGE], kind="error",
                    run_dir=str(self.path), step=self.step,
                    details={"traceback": trace[-_MAX_TRACEBACK:]}))  # the end says where
        finally:
            self._closed = True
            if self._channel is not None:
                self._channel.close()
            self._run_dir.close()
        if own is not None and error is own:
            raise own  # recorded as Failed; the loop's caller hears it too
        return False

    def _open(self, what: str) -> bool:
        """True when this process writes the run (rank 0), False on other ranks. Outside the
        with block a clear error: a record after Finished would reopen metrics.jsonl without
        the run's lock, and a reader would see a run that ended and went on."""
        if not self.enabled:
            return False
        if self._closed:
            raise RuntimeError(
                f"tui_nn.Run.{what}() after the `with` block: the run in {self.path} has "
                "ended (its metrics.jsonl ends with Finished or Failed); open a new "
                "tui_nn.Run for more")
        if self._run_dir is None:
            raise RuntimeError(f"tui_nn.Run.{what}() before the run is open: use it as "
                               "`with tui_nn.Run(...) as run:`")
        return True

    # ---- logging --------------------------------------------------------------------------------
    def log_step(self, loss: Any = None, lr: float | None = None, **scalars: Any) -> None:
        """One training step. loss (float or 0-d tensor) is the main curve; without it the
        first scalar is. Other scalars ride along (their last values at each record)."""
        if not self._open("log_step"):
            return
        for name, value in (("loss", loss), *scalars.items()):
            _check_scalar(name, value)  # here, where the loop's line is in the traceback
        self.step += 1
        if loss is None and scalars:
            loss = next(iter(scalars.values()))
        self._pending.append(loss)
        if self._optimizer is not None:
            self.apply_lr(self._optimizer, self._scheduler)
            if lr is None:  # the (first) optimizer's
                lr = _as_list(self._optimizer)[0].param_groups[0]["lr"]
        if lr is not None:
            self._lr = lr
        self._scalars.update(scalars)
        if time.monotonic() >= self._next_flush:
            self._flush()

    def log_epoch(self, **values: Any) -> None:
        """The end of an epoch: val_loss and the metric (e.g. accuracy=0.97), plus any other
        scalars. Writes the pending steps first."""
        if not self._open("log_epoch"):
            return
        self._flush()
        values = {k: _to_float(v) for k, v in values.items()}
        val_loss = values.pop("val_loss", math.nan)
        value = val_loss if self.metric == "val_loss" else values.pop(self.metric, math.nan)
        better = math.isfinite(value) and (
            self.best_value is None
            or (value > self.best_value if self.higher_is_better else value < self.best_value))
        if better:
            self.best_value = value
        self.last_value = value
        now = time.monotonic()
        train = [v for v in self._epoch_losses if math.isfinite(v)]
        rate = len(self._epoch_losses) * self.batch_size / max(now - self._epoch_t0, 1e-9)
        self._emit(ev.EpochMetrics(
            epoch=self.epoch, step=self.step,
            train_loss=sum(train) / len(train) if train else math.nan, val_loss=val_loss,
            metric=self.metric, value=value,
            best_value=self.best_value if self.best_value is not None else math.nan,
            is_best=better, elapsed_s=now - self._t0, epoch_time_s=now - self._epoch_t0,
            samples_per_s=rate if self.batch_size else math.nan, scalars=values))
        self.epoch += 1
        self._epoch_losses, self._epoch_t0 = [], now

    def _flush(self) -> None:
        """Write the pending steps as StepMetrics records (the one read-back of tensors): one
        per report interval, split so that no line passes the readers' limit."""
        if not self._pending:
            return
        pending, named, self._pending, self._scalars = self._pending, self._scalars, [], {}
        losses = _read_back(pending)  # taken first: a value that fails is not read again
        scalars = dict(zip(named, _read_back(list(named.values()))))
        self._epoch_losses += losses
        now = time.monotonic()
        per_step = len(losses) / max(now - self._window_t0, 1e-9)
        total, spe = self.epochs * self.steps_per_epoch, self.steps_per_epoch
        first = self.step - len(losses) + 1
        for start in range(0, len(losses), STEPS_PER_RECORD):
            chunk = losses[start:start + STEPS_PER_RECORD]
            last = first + start + len(chunk) - 1
            self._emit(ev.StepMetrics(
                epoch=self.epoch, step=last, first_step=first + start, losses=tuple(chunk),
                lr=float(_to_float(self._lr)),
                samples_per_s=per_step * self.batch_size if self.batch_size else math.nan,
                eta_s=(total - last) / per_step if total and per_step else None,
                epoch_step=(last - 1) % spe + 1 if spe else last, steps_per_epoch=spe,
                total_steps=total, scalars=scalars if last == self.step else {}))
        self._window_t0 = now
        self._next_flush = now + self.report_interval_s

    def _emit(self, event: ev.Event) -> None:
        with self._write_lock:  # the control channel's thread may record too
            self._run_dir.append_metrics(event.to_dict())

    # ---- steering (from `tui-nn control`, `watch`, or the app) -------------------------------
    # A request is taken only when the loop acts on it: it polls the flag (or hands over its
    # optimizer for lr); the others are refused with the reason (`tui-nn control` exits 1).
    _HOW = {"pause": "call run.wait_while_paused() each step",
            "resume": "call run.wait_while_paused() each step",
            "stop": "read run.stop_requested each step",
            "checkpoint": "read run.checkpoint_requested each step",
            "lr": "call run.apply_lr(optimizer) each step, or pass tui_nn.Run(optimizer=...)"}

    def refusal(self, action: str) -> str | None:
        if action in self._honoured or action not in self._HOW:
            return None
        if not self._learns:
            return f"this run does not act on '{action}' requests (it is watched, not steered)"
        return (f"this loop does not act on '{action}' requests: it has not yet done what "
                f"that needs ({self._HOW[action]})")

    def _polled(self, *actions: str) -> None:
        if self._learns:
            self._honoured.update(actions)

    @property
    def stop_requested(self) -> bool:
        self._polled("stop")
        return self._stop.is_set()

    @property
    def checkpoint_requested(self) -> bool:
        self._polled("checkpoint")
        return self._checkpoint_requested.is_set()

    def checkpoint_saved(self, path: str | Path) -> None:
        """Say that the loop saved a checkpoint (the request, if any, is answered)."""
        if not self._open("checkpoint_saved"):
            return
        reason = "requested" if self._checkpoint_requested.is_set() else "periodic"
        self._checkpoint_requested.clear()
        self._flush()
        self._emit(ev.CheckpointSaved(path=str(path), step=self.step, epoch=self.epoch,
                                      reason=reason))

    def wait_while_paused(self) -> None:
        """Return at once unless the run was paused from outside; then block until resumed
        or stopped, recording both."""
        self._polled("pause", "resume")
        if self._running.is_set() or not self._open("wait_while_paused"):
            return
        self._flush()
        self._emit(ev.StateChanged("paused"))
        self._running.wait()
        self._emit(ev.StateChanged("running"))

    def apply_lr(self, optimizer: Any, scheduler: Any = None) -> float:
        """Multiply the lr by the factor asked for from outside (`l` in watch, `tui-nn control
        RUN lr F`), in the optimizer and its scheduler so that the next scheduler.step() keeps
        it (either may be a list); returns the factor (1.0 when none was asked for)."""
        self._polled("lr")
        if not self._open("apply_lr"):
            return 1.0
        optimizers = _as_list(optimizer)
        factor = self.take_lr_factor() if optimizers else 1.0
        if factor != 1.0:
            scale_lrs(optimizers, _as_list(scheduler), factor)
            self._lr = optimizers[0].param_groups[0]["lr"]
            self._emit(ev.LrScaled(step=self.step, factor=factor, lr=float(_to_float(self._lr))))
        return factor

    def _config_record(self) -> dict[str, Any]:
        from tui_nn.version import __version__
        return {**{k: v for k, v in self.config.items() if _jsonable(v)},
                "model": self.model, "dataset": self.dataset, "metric": self.metric,
                "epochs": self.epochs, "source": "tui_nn.Run", "tui_nn_version": __version__,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _read_back(values: list[Any]) -> list[float]:
    """Floats from floats and tensors: tensors are stacked and read in one host sync."""
    torch = sys.modules.get("torch")
    if torch is not None and any(isinstance(v, torch.Tensor) for v in values):
        tensors = [v.detach().float().reshape(()) if isinstance(v, torch.Tensor)
                   else torch.tensor(float(v)) for v in values]
        device = next(v.device for v in values if isinstance(v, torch.Tensor))
        return torch.stack([t.to(device) for t in tensors]).tolist()
    return [_to_float(v) for v in values]


def _as_list(value: Any) -> list[Any]:
    return [v for v in (value if isinstance(value, (list, tuple)) else [value]) if v is not None]


def _check_scalar(name: str, value: Any) -> None:
    """A loss or scalar is a number or a one-element tensor (numel() reads no device memory)."""
    numel = getattr(value, "numel", None)
    if callable(numel) and numel() != 1:
        shape = tuple(getattr(value, "shape", ()))
        raise ValueError(f"tui_nn.Run.log_step: {name} must be a number or a one-element "
                         f"tensor (got a tensor of shape {shape}: reduce it, e.g. .mean())")


def _to_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _jsonable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, dict))
