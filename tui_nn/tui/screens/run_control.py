"""The Train tab's run, from start to end: the TrainingBridge, its messages, the frame timer.

RunController belongs to the main screen. The bridge posts to the screen (one message queue:
a run's messages keep their order with the picker's and the form's), whose one RunMessage
handler passes them here; they become engine events for the Train tab's RunView (the widget
`watch` draws its run with) and the screen's run_state. The screen's keys call its
start/pause/stop/checkpoint/halve_lr.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functools import partial

from tui_nn.engine.config import FORM_FIELDS
from tui_nn.tui import messages as msg
from tui_nn.tui.bridge import TrainingBridge
from tui_nn.tui.history import RunHistory
from tui_nn.tui.widgets.insight import InsightPane
from tui_nn.tui.widgets.memory_line import MemoryLine
from tui_nn.tui.widgets.run_memory import RunMemory, estimate_memory, run_memory_from
from tui_nn.tui.widgets.run_view import RunView
from tui_nn.tui.widgets.train_form import TrainForm

if TYPE_CHECKING:
    from tui_nn.engine import events as ev

# While training, the status and the curves refresh together, at most every FRAME_S; the frame
# interval stretches (up to MAX_FRAME_S) whenever the UI thread uses more than UI_CPU_BUDGET of
# a core, so on a busy CPU box the app leaves the cores to the training run. Measured with
# benchmarks/bench_tui_overhead.py on 2 CPU cores: 0.5 s frames and a 3% budget cost the run
# about 10% of its throughput, 1 s and 1.5% about 3%.
FRAME_S = 1.0
MAX_FRAME_S = 4.0
UI_CPU_BUDGET = 0.015
# What the app asks the engine for, for the Insight tab (a TrainConfig field each).
INSIGHT_OPTIONS = {"grad_flow": True, "live_fit": True, "val_predictions": True}
FAILURE_TITLES = {"nan": "loss is NaN", "oom": "out of memory", "data": "data",
                  "shape": "shape mismatch", "fit": "model does not fit the data", "disk": "disk"}


@dataclass
class RunMemoryPredicted(msg.RunMessage):
    """The estimate for a live run's batch, made on a worker (None: it could not be made)."""

    memory: RunMemory
    predicted: int | None


class RunController:
    """Starts, steers and ends the Train tab's runs (one at a time)."""

    def __init__(self, screen: Any, history: RunHistory) -> None:
        self.screen = screen  # the MainScreen: its widgets, entries and run_state
        self.history = history
        self.bridge = TrainingBridge(screen, history)  # its worker belongs to the screen
        self.frame_interval = FRAME_S
        self._last_frame = 0.0
        self._cpu_mark = (time.monotonic(), time.thread_time())
        self._paused_on_nan = False  # a NaN paused the run and its lr was not lowered since
        self._handlers = {
            msg.TrainingStarted: self._started,
            msg.TrainingProgress: lambda _: self._maybe_frame(),
            msg.RecordedHistoryLoaded: self._recorded_loaded,
            msg.CheckpointWritten: self._checkpoint, msg.GradientWarnings: self._gradients,
            msg.TrainingStateChanged: self._state, msg.TrainingAlert: self._alert,
            msg.TrainingEnded: self._ended, RunMemoryPredicted: self._run_memory_predicted}

    def mount(self) -> None:
        # While a run is live, one "frame" every FRAME_S updates the status and the curves
        # together (one screen update, not one per widget), and picks up progress a throttled
        # message did not carry (the last steps before a long validation).
        self._frame_timer = self.screen.set_interval(FRAME_S / 2, self._maybe_frame, pause=True)

    def handle(self, message: msg.RunMessage) -> None:
        self._handlers[type(message)](message)

    def notify(self, text: str, **kwargs: Any) -> None:
        self.screen.notify(text, **kwargs)

    @property
    def view(self) -> RunView:
        return self.screen.query_one("#train-row", RunView)

    @property
    def state(self) -> str:
        return self.screen.run_state

    @state.setter
    def state(self, value: str) -> None:
        self.screen.run_state = value

    def note(self, text: str, level: str = "info") -> None:
        self.view.note(text, level)

    # ---- starting ----------------------------------------------------------------------------
    def refuse_if_running(self) -> bool:
        if self.bridge.running:
            self.notify("a run is already in progress", severity="warning", markup=False)
        return self.bridge.running

    def start(self, config: Any, *, factory: Any = None, dataset: Any = None,
              resume_from: str | None = None) -> None:
        """Train ``config`` (a validated TrainConfig) on the bridge's thread."""
        self.view.reset()
        self.bridge.start(config, model_factory=factory, dataset=dataset,
                          resume_from=resume_from)
        self.state = "starting"
        self.view.curves.redraw()

    @staticmethod
    def known_options(options: dict[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
        from tui_nn.engine import TrainConfig

        known = {f.name for f in fields(TrainConfig)} - set(exclude)
        return {k: v for k, v in options.items() if k in known}

    def resume_options(self, pass_through: dict[str, Any],
                       typed: dict[str, Any] | None) -> dict[str, Any]:
        """TrainConfig fields for a resume: the app's own, plus the CLI's options ``typed`` (what
        a resume was asked to change: the engine merges them onto the run's saved config)."""
        options: dict[str, Any] = {"device": pass_through.get("device", "auto"),
                                   "on_nan": "pause", **INSIGHT_OPTIONS}
        if typed:
            options.update(self.known_options(typed, ("model", "run_dir", "runs_root")))
        return options

    # ---- steering ------------------------------------------------------------------------------
    def halve_lr(self) -> None:
        if self.state not in ("running", "paused"):
            return
        try:
            taken = self.bridge.scale_lr(0.5)
        except ValueError as e:  # halvings gathered while paused: past the lr factor range
            self.note(str(e), "warning")
            return
        if taken:
            self.note("halving the learning rate before the next step", "dim")

    def toggle_pause(self) -> None:
        if self.state == "running":
            self.bridge.pause()
            self.note("pausing…", "dim")
        elif self.state == "paused":
            self.bridge.resume()
            self.note("resuming…", "dim")

    def stop(self) -> None:
        if self.state in ("starting", "running", "paused"):
            self.bridge.stop()
            self.state = "stopping"
            self.note("stopping after this step; a checkpoint will be saved", "warning")

    def checkpoint(self) -> None:
        if self.state in ("running", "paused"):
            self.bridge.request_checkpoint()
            if self.state == "paused":
                self.notify("the checkpoint is written when the run resumes (or stops)",
                            timeout=4, markup=False)

    async def stop_for_quit(self) -> str:
        """Stop a run in progress and wait for its checkpoint; a line for the terminal."""
        if not self.bridge.running:
            return ""
        self.stop()
        self.notify("stopping the run and saving a checkpoint…", timeout=10, markup=False)
        await self.bridge.wait()
        return self.stopped_text()

    def stopped_text(self) -> str:
        """The line for the terminal once a stopped run's thread has returned."""
        if not self.bridge.last_checkpoint:
            return "tui-nn: run stopped"
        return (f"tui-nn: run stopped; checkpoint saved to {self.bridge.last_checkpoint}"
                + self.resume_hint())

    def resume_hint(self) -> str:
        """The command that continues the run (as a headless run prints it); after a NaN the
        run paused on, one with half the lr (the same lr would blow up again)."""
        from tui_nn.engine.recovery import halved_lr
        from tui_nn.engine.resume import resume_command

        started, trainer = self.bridge.started, self.bridge.trainer
        if started is None or not started.run_dir:
            return ""
        lower = (f" --lr {halved_lr(trainer.config.lr)}"
                 if self._paused_on_nan and trainer is not None and trainer.config.lr else "")
        return f"\ncontinue with: {resume_command(started.run_dir, headless=False)}{lower}"

    # ---- the bridge's messages -----------------------------------------------------------------
    def _started(self, message: msg.TrainingStarted) -> None:
        e = message.event
        if self.state == "starting":
            self.state = "running"
        self._paused_on_nan = False
        self.view.apply(e)
        if e.run_dir:
            self.note(f"run directory {e.run_dir}", "dim")
        entry = self.screen.entries.get(e.model)
        self.screen.query_one(InsightPane).reset(own_step=entry is not None and entry.own_step)
        self.frame_interval = FRAME_S
        self._cpu_mark = (time.monotonic(), time.thread_time())
        self._frame_timer.resume()
        if self.bridge.resuming:
            self._show_earlier(e)
        self.show_run_memory(e)

    def _show_earlier(self, e: ev.RunStarted) -> None:
        """A resumed run: the settings the engine merged (its lr as scaled since), and the
        epochs recorded before its checkpoint (the bridge loaded them from metrics.jsonl) on
        the status, so that it continues rather than restarts."""
        from tui_nn.engine import events as ev

        trainer, history = self.bridge.trainer, self.history
        if trainer is not None:  # set before the run began; its config no longer changes
            # The lr the run has: its config's, scaled by every l / `control lr` since
            # (a schedule's base: OneCycleLR's max_lr, the others' initial_lr).
            group = trainer.optimizer.param_groups[0]
            lr = group.get("max_lr", group.get("initial_lr", group["lr"]))
            self.screen.query_one(TrainForm).fill(**{
                **{k: getattr(trainer.config, k, None) for k in FORM_FIELDS}, "lr": lr})
        self.view.curves.redraw()
        earlier = [r for r in list(history.epochs) if r.epoch < e.start_epoch]
        best = history.best_epoch()
        if not earlier or best is None:
            return
        last = earlier[-1]
        # The status reads an epoch's metrics; the timings of a past epoch are not shown.
        status = self.view.status
        status.epoch = ev.EpochMetrics(
            epoch=last.epoch, step=last.step, train_loss=last.train_loss,
            val_loss=last.val_loss, metric=history.metric, value=last.value,
            best_value=best.value, is_best=best is last, elapsed_s=0.0, epoch_time_s=0.0,
            samples_per_s=0.0)
        status.best_epoch = best.epoch + 1
        done = f"epochs 1–{last.epoch + 1}" if last.epoch else "epoch 1"
        self.note(f"{done} and steps up to {e.start_step:,} from the run's metrics.jsonl", "dim")

    def show_run_memory(self, e: ev.RunStarted) -> None:
        """The system pane's 'predicted · measured' line: the Model tab's estimate when it is
        for this model and batch, else one made on a worker."""
        pane = self.view.system
        pane.run_memory = memory = run_memory_from(e)  # the measured figure (RunView's too)
        if memory is None:
            return
        line = self.screen.query_one(MemoryLine)
        estimate = line.estimate
        if line.source == e.model and estimate is not None \
                and estimate.batch_size == memory.batch_size:
            pane.run_memory = replace(memory, predicted=estimate.activations)
            return
        entry = self.screen.entries.get(e.model)
        input_text = line.input_text if line.source == e.model else \
            entry.input_text if entry is not None else ""
        self.screen.run_worker(
            partial(self._predict_run_memory, self.screen.user_models.get(e.model, e.model),
                    input_text.strip() or None, memory),
            thread=True, exclusive=True, group="run-memory", exit_on_error=False)

    def _predict_run_memory(self, target: Any, input_text: str | None,
                            memory: RunMemory) -> None:  # on a worker thread
        try:
            estimate = estimate_memory(target, input_text, memory.batch_size)
            predicted = None if estimate is None else estimate.activations
        except Exception:  # noqa: BLE001 - the line then shows the measured figure alone
            predicted = None
        self.screen.post_message(RunMemoryPredicted(memory, predicted))

    def _run_memory_predicted(self, message: RunMemoryPredicted) -> None:
        pane, asked = self.view.system, message.memory
        now = pane.run_memory
        if message.predicted is not None and now is not None and \
                (now.batch_size, now.measured) == (asked.batch_size, asked.measured):  # same run
            pane.run_memory = replace(now, predicted=message.predicted)

    def _recorded_loaded(self, _: msg.RecordedHistoryLoaded) -> None:
        # A resumed run's curves so far, drawn at once; TrainingStarted (always later) cuts
        # them back to the checkpoint and sets the axis to the run's length.
        curves = self.view.curves
        curves.set_axis(0, 0)
        curves.redraw()

    def _maybe_frame(self) -> None:
        if time.monotonic() - self._last_frame >= 0.95 * self.frame_interval:
            self._frame()

    def _frame(self) -> None:
        now, cpu = time.monotonic(), time.thread_time()
        wall0, cpu0 = self._cpu_mark
        if now - wall0 >= 2.0:  # the UI thread's share of a core over the last seconds
            share = (cpu - cpu0) / (now - wall0)
            if share > UI_CPU_BUDGET:
                self.frame_interval = min(self.frame_interval * 1.5, MAX_FRAME_S)
            elif share < UI_CPU_BUDGET / 2:
                self.frame_interval = max(self.frame_interval / 1.25, FRAME_S)
            self._cpu_mark = (now, cpu)
        self._last_frame = now
        self.sync_progress()
        self.view.curves.tick()
        self.screen.query_one(InsightPane).tick(self.bridge.insight)

    def sync_progress(self) -> None:
        """Show the bridge's newest metrics (they may be newer than the message that woke us:
        progress messages are throttled and replaceable) and the epochs not yet shown."""
        bridge, view = self.bridge, self.view
        if bridge.started is None:  # a resume that failed before its first step: the
            return  # history holds only the run's recorded epochs, shown by no one
        if bridge.latest is not None:
            view.apply(bridge.latest)
        for epoch in bridge.take_epochs():
            view.apply(epoch)
        view.flush()

    def _checkpoint(self, message: msg.CheckpointWritten) -> None:
        self.sync_progress()  # the epoch lines this checkpoint follows come first
        e = message.event
        self.view.apply(e)
        if e.reason == "requested":
            self.notify(f"checkpoint saved: {e.path}", title="checkpoint", timeout=4,
                        markup=False)

    def _gradients(self, message: msg.GradientWarnings) -> None:
        for line in message.warnings:
            self.note(f"gradients: {line}", "warning")

    def _state(self, message: msg.TrainingStateChanged) -> None:
        if self.state in ("running", "paused", "starting"):
            self.state = message.event.state
        self.view.apply(message.event)

    def _alert(self, message: msg.TrainingAlert) -> None:
        from tui_nn.engine import events as ev

        e = message.event
        self._paused_on_nan = isinstance(e, ev.NonFiniteLoss)
        self.sync_progress()
        self.view.apply(e)
        if isinstance(e, ev.NonFiniteLoss):
            self.notify(f"{e.message}.\nkeys: l halves the lr, p resumes, x stops",
                        title="loss is NaN: run paused", severity="error", timeout=20,
                        markup=False)
        elif isinstance(e, ev.LrScaled):
            self.notify(f"learning rate now {e.lr:.3g}", timeout=4, markup=False)

    def _ended(self, message: msg.TrainingEnded) -> None:
        from tui_nn.engine import events as ev
        from tui_nn.fmt import summary_line

        e = message.event
        self.sync_progress()
        self.screen.query_one(InsightPane).tick(self.bridge.insight)
        self._frame_timer.pause()
        self.view.apply(e)
        if isinstance(e, ev.Finished):
            self.state = e.status  # finished | stopped
            self.notify(summary_line(e), title=f"run {e.status}", timeout=8, markup=False)
        else:
            self.state = "failed"
            self.notify(e.message, title=FAILURE_TITLES.get(e.kind, "training failed"),
                        severity="error", timeout=12, markup=False)

    def worker_failed(self) -> None:
        """The training worker raised (the screen's Worker.StateChanged handler said so)."""
        self.state = "failed"
        self.view.curves.live = False
        self._frame_timer.pause()


def resume_settings(run_dir: str, options: dict[str, Any]) -> dict[str, Any]:
    """A run's saved settings with ``options`` over them (what the form shows for a resume)."""
    from tui_nn.engine.rundir import run_dir_of
    from tui_nn.runs.records import read_config

    saved, _ = read_config(run_dir_of(Path(run_dir)))
    return {**saved, **options}


def describe(config: Any) -> str:
    """A run's settings in a line (the log's "starting ..." line)."""
    parts = [f"dataset {config.dataset or 'default'}"]
    for key in ("epochs", "batch_size", "lr", "optimizer"):
        value = getattr(config, key)
        if value is not None:
            parts.append(f"{key.replace('_', ' ')} {value:g}" if isinstance(value, float)
                         else f"{key.replace('_', ' ')} {value}")
    if config.schedule != "none":
        parts.append(f"schedule {config.schedule}")
    return ", ".join(parts)
