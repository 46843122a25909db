"""One run, drawn: its status, curves, system pane (with the run's memory line) and event log.

The Train tab (a run of this app, through the TrainingBridge) and `watch` (a run another process
writes, through metrics.jsonl) both show a run with this widget, and both feed it the engine's
own events through ``apply(event)``: the same event reads the same on either screen. The feeder
keeps the RunHistory (the bridge on the training thread, watch's follower on the UI thread);
the view draws it. The run's lifecycle (starting, pausing, liveness, steering) stays with the
screen that owns the run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget

from tui_nn.fmt import epoch_line
from tui_nn.tui.history import RunHistory
from tui_nn.tui.widgets.curves import Curves
from tui_nn.tui.widgets.event_log import EventLog
from tui_nn.tui.widgets.run_memory import run_memory_from
from tui_nn.tui.widgets.run_status import RunStatus
from tui_nn.tui.widgets.system_pane import SystemPane

if TYPE_CHECKING:  # the engine's events module is torch-free, but not needed at import
    from tui_nn.engine import events as ev

# More new epochs than this in one flush read as one line ("epochs 4–40/100 ..."), not a flood.
EPOCH_LINES_MAX = 3
TRACEBACK_LINES = 6  # the end of a failed run's traceback, under its error line


class RunView(Horizontal):
    """A side column (status) and a main column (curves). ``arrangement``: where the system
    pane and the log go, ``under`` the curves (the Train tab, beside its form) or in the
    ``side`` column (watch). ``side_top``: widgets above the status (the Train tab's form)."""

    def __init__(self, history: RunHistory, system: SystemPane, *, prefix: str, log_id: str,
                 arrangement: Literal["under", "side"], side_top: tuple[Widget, ...] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history = history
        self.system, self._prefix, self._log_id = system, prefix, log_id
        self._arrangement, self._side_top = arrangement, side_top
        self.started: ev.RunStarted | None = None
        self.final: ev.Finished | ev.Failed | None = None
        self.log_epochs = True  # False while a feeder replays what was recorded before
        self._latest: ev.StepMetrics | None = None
        self._epoch: ev.EpochMetrics | None = None
        self._best_epoch: int | None = None
        self._new_epochs: list[ev.EpochMetrics] = []
        self._flush_due = False

    def compose(self) -> ComposeResult:
        log = EventLog(id=self._log_id)
        with Vertical(id=f"{self._prefix}-side"):
            yield from self._side_top
            yield RunStatus(id="status")
            if self._arrangement == "side":
                yield self.system
                yield log
        with Vertical(id=f"{self._prefix}-main"):
            yield Curves(self.history, id="curves")
            if self._arrangement == "under":
                yield self.system
                yield log

    @property
    def status(self) -> RunStatus:
        return self.query_one(RunStatus)

    @property
    def curves(self) -> Curves:
        return self.query_one(Curves)

    # ---- feeding ------------------------------------------------------------------------------
    def reset(self) -> None:
        """A new run is about to start here: nothing of the last one shown."""
        status = self.status
        status.started = status.latest = status.epoch = None
        status.best_epoch = 0
        self.system.run_memory = None  # the new run's RunStarted brings its own
        self.system.data_wait = None
        self.curves.set_axis(0, 0)
        self.started = self.final = None
        self._latest = self._epoch = self._best_epoch = None
        self._new_epochs.clear()

    def apply(self, e: ev.Event) -> None:
        """Show one engine event. Steps and epochs are gathered and shown once per flush (a
        first read of a run may hold thousands); flush() runs after the current message, or
        when the feeder calls it, and before any other line is logged (lines keep their order)."""
        from tui_nn.engine import events as ev

        if isinstance(e, ev.StepMetrics):
            self._latest = e
        elif isinstance(e, ev.EpochMetrics):
            self._epoch = e
            if e.is_best:
                self._best_epoch = e.epoch + 1
            if self.log_epochs:
                self._new_epochs.append(e)
        else:
            self.flush()
            self._apply_other(e)
            return
        if not self._flush_due:
            self._flush_due = True
            self.call_later(self.flush)

    def _apply_other(self, e: ev.Event) -> None:
        # Events come inert: schema.decode (watch) or the bridge's inert_event (Train tab).
        from tui_nn.engine import events as ev

        if isinstance(e, ev.RunStarted):
            self._apply_started(e)
        elif isinstance(e, ev.StateChanged):
            self.note(e.state, "dim")
        elif isinstance(e, ev.CheckpointSaved) and e.reason != "best":
            # best.pt is written with every better epoch: the epoch line's * says so. No path:
            # it is the run directory's (a watched run's names the writer's box).
            self.note(f"checkpoint ({e.reason}, step {e.step})", "dim")
        elif isinstance(e, ev.NonFiniteLoss):
            self.note(e.message, "error")
        elif isinstance(e, ev.LrScaled):
            self.note(f"lr × {e.factor:g} → {e.lr:.3g} (step {e.step})", "warning")
        elif isinstance(e, ev.Notice):  # the data's are progress; the others, warnings
            self.note(e.message, "dim" if e.source == "data" else "warning")
        elif isinstance(e, (ev.Finished, ev.Failed)):
            self.final = e
            self.curves.live = False
            self._log_final(e)

    def flush(self) -> None:
        """Put the gathered steps and epochs on the widgets, and log the new epochs."""
        self._flush_due = False
        if self._new_epochs:
            new, self._new_epochs = self._new_epochs, []
            total = self.started.epochs if self.started is not None else None
            if len(new) > EPOCH_LINES_MAX:
                self.note(epoch_line(new[-1], total, first=new[0].epoch, timing=False))
            else:
                for e in new:
                    self.note(epoch_line(e, total, timing=False))
        status = self.status
        if self._best_epoch is not None:  # before epoch: RunStatus redraws when epoch is set
            status.best_epoch, self._best_epoch = self._best_epoch, None
        if self._latest is not None:
            status.latest, latest, self._latest = self._latest, self._latest, None
            self._note_gpu_allocated(latest.memory_bytes)
            self.system.data_wait = latest.data_wait
        if self._epoch is not None:
            status.epoch, self._epoch = self._epoch, None

    def _apply_started(self, e: ev.RunStarted) -> None:
        self.started, self.final = e, None
        self.history.metric = (e.metric or "accuracy")[:20]
        self.status.started = e
        self.curves.set_axis(0, e.total_steps)  # the whole run, a resumed one's too
        self.curves.live = True
        self.system.run_memory = run_memory_from(e)  # what the trainer measured at setup
        on = f" on {e.dataset}" if e.dataset not in ("", "-") else ""
        self.note(f"{'resumed' if e.start_step else 'started'} {e.model}{on}",
                 "good")
        # A count of 0 is one the loop did not give (tui_nn.Run): left out.
        sizes = " × ".join(f"{n} {unit}" for n, unit in ((e.epochs, "epochs"),
                                                          (e.steps_per_epoch, "steps")) if n)
        counts = [sizes, f"batch {e.batch_size}" if e.batch_size else "",
                  f"{e.parameters:,} params" if e.parameters else "",
                  f"{e.n_train:,} train / {e.n_val:,} val" if e.n_train else "",
                  e.device_name]
        setup = f"; {e.setup}" if e.setup else ""
        # No run directory: a watched run's record names the writer's path (another box's,
        # for a mirrored run); the Train tab says where its own run goes.
        self.note(", ".join(c for c in counts if c) + setup, "dim")

    def _log_final(self, e: ev.Finished | ev.Failed) -> None:
        from tui_nn.engine import events as ev

        if isinstance(e, ev.Finished):
            # A loop that logs no epochs (tui_nn.Run) did not give "0 epochs": left out.
            epochs = f"{e.epochs_done} epochs, " if e.epochs_done or self.history.epochs else ""
            self.note(f"run {e.status}: {epochs}{e.step:,} steps", "good")
            return
        self.note(f"failed ({e.kind}): {e.message}", "error")
        traceback = e.details.get("traceback") if isinstance(e.details, dict) else None
        if isinstance(traceback, str):
            for line in traceback.rstrip().splitlines()[-TRACEBACK_LINES:]:
                self.note(line, "dim")

    def _note_gpu_allocated(self, allocated: int | None) -> None:
        """On CUDA the steps report memory_allocated: the memory line keeps the most seen."""
        memory, started = self.system.run_memory, self.started
        if memory is None or allocated is None or started is None \
                or not started.device.startswith("cuda"):
            return
        if memory.gpu_allocated is None or allocated > memory.gpu_allocated:
            self.system.run_memory = replace(memory, gpu_allocated=allocated)

    def note(self, text: str, level: str = "info") -> None:
        """A line in every event log of the screen (the Train tab's and the Log tab's): one
        run per screen."""
        for log in self.screen.query(EventLog):
            log.add(text, level)
