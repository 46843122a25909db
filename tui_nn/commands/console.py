"""Headless training output: a live progress bar on a terminal, plain lines otherwise.

When stdout is not a terminal (nohup, Slurm, CI, a pipe) it prints one line per epoch (and a
step line at most every `line_interval_s`), never carriage-return bars, flushed immediately.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tui_nn.engine import events as ev  # torch-free: views that never train import it too
from tui_nn.engine.schema import inert_event
from tui_nn.fmt import epoch_line, fmt_duration, summary_line


def data_wait(event: ev.StepMetrics) -> str:
    """", waiting for data 37%": the share of the steps spent waiting on the DataLoader (an
    input-bound run shows); nothing for data in memory."""
    share = event.data_wait
    return "" if share is None or share != share else \
        f", waiting for data {min(max(share, 0.0), 1.0):.0%}"


class PlainReporter:
    """Line-oriented output for logs."""

    def __init__(self, out: TextIO | None = None, line_interval_s: float = 30.0, *,
                 processes: int = 1) -> None:
        self.out = out or sys.stdout
        self.line_interval_s = line_interval_s
        self.processes = processes  # DDP: the run's world size (rank 0 alone prints)
        self._last_line = time.monotonic()
        self.started: ev.RunStarted | None = None

    def _print(self, text: str) -> None:
        if self.out is None:
            return
        try:
            print(text, file=self.out, flush=True)
        except BrokenPipeError:
            # The reader went away (`| head`, a closed terminal): training goes on, quietly;
            # the run directory keeps every record.
            self.out = None

    def __call__(self, event: ev.Event) -> None:
        # Model, dataset, device and path names come from the user's files and the host: the
        # event's strings made inert once, as the app's bridge does (every line below is one).
        event = inert_event(event)
        if isinstance(event, ev.RunStarted):
            self.started = event
            where = f" → {event.run_dir}" if event.run_dir else ""
            setup = f"; {event.setup}" if event.setup else ""
            resumed = (f", resuming at epoch {event.start_epoch + 1} step {event.start_step}"
                       if event.start_step else "")
            # Under DDP each process has its own device (a GPU) or CPU threads.
            device = (f"{self.processes} processes × {event.device_name}"
                      if self.processes > 1 else event.device_name)
            changes = "".join(f"; {k} {old} → {new}" for k, (old, new)
                              in (getattr(event, "changes", None) or {}).items())
            self._print(f"training {event.model} ({event.parameters:,} params) on {event.dataset} "
                        f"[{event.n_train:,} train / {event.n_val:,} val] on {device}: "
                        f"{event.epochs} epochs × {event.steps_per_epoch} steps, "
                        f"batch {event.batch_size}{setup}{resumed}{changes}{where}")
        elif isinstance(event, ev.StepMetrics):
            now = time.monotonic()
            if now - self._last_line >= self.line_interval_s:
                self._last_line = now
                self._print(f"epoch {event.epoch + 1} step {event.epoch_step}/"
                            f"{event.steps_per_epoch} loss {event.loss:.4f} "
                            f"{event.samples_per_s:,.0f} samples/s{data_wait(event)} "
                            f"ETA {fmt_duration(event.eta_s)}")
        elif isinstance(event, ev.EpochMetrics):
            self._last_line = time.monotonic()
            self._print(epoch_line(event, self.started.epochs if self.started else None))
        elif isinstance(event, ev.CheckpointSaved):
            if event.reason in ("stop", "requested"):
                self._print(f"checkpoint saved: {event.path} (step {event.step})")
        elif isinstance(event, ev.StateChanged):
            self._print(f"{event.state}")
        elif isinstance(event, ev.Notice):  # the data's own (a decode's progress) are news
            self._print(event.message if event.source == "data" else f"warning: {event.message}")
        elif isinstance(event, ev.Finished):
            self._print(summary_line(event))
        elif isinstance(event, ev.Failed):
            pass  # the CLI prints the error once, with its exit code

    def close(self) -> None:
        pass


class RichReporter(PlainReporter):
    """A live progress bar with loss, throughput and ETA, for interactive terminals."""

    def __init__(self, out: TextIO | None = None, *, processes: int = 1) -> None:
        super().__init__(out, processes=processes)
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn)

        self.console = Console(file=self.out)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
            console=self.console, transient=False, refresh_per_second=8)
        self._task = None

    def _print(self, text: str) -> None:
        self.progress.console.print(text, highlight=False, markup=False)

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            super().__call__(event)
            self.progress.start()
            self._task = self.progress.add_task(
                "train", total=event.total_steps, completed=event.start_step, loss="-",
                speed="-", eta="--:--")
        elif isinstance(event, ev.StepMetrics):
            if self._task is not None:
                self.progress.update(
                    self._task, completed=event.step, loss=f"{event.loss:.4f}",
                    speed=f"{event.samples_per_s:,.0f}/s{data_wait(event)}",
                    eta=fmt_duration(event.eta_s),
                    description=f"epoch {event.epoch + 1}")
        else:
            if isinstance(event, (ev.Finished, ev.Failed)):
                self.close()  # the bar stops before the run's last line
            super().__call__(event)

    def close(self) -> None:
        if self.progress.live.is_started:
            self.progress.stop()
