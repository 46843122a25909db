"""`tui-nn watch`: the app, read-only, following a run directory that another process writes
(a headless run under nohup, Slurm or torchrun, or an app in another terminal).

A thread worker polls metrics.jsonl (tui_nn.runs.follow: one stat() when nothing changed, only
the appended bytes otherwise) every POLL_S and posts the new records; every STATUS_S it also
asks tui_nn.runs.liveness whether a process still writes the file. The screen feeds the records
to the same widgets as the Train tab (Curves, RunStatus, EventLog) and the system pane follows
the writing process. Nothing here opens a file of the run for writing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import Worker, get_current_worker

from tui_nn.engine import events as ev
from tui_nn.engine import schema
from tui_nn.engine.channel import ACTIONS
from tui_nn.runs import liveness, records
from tui_nn.runs.follow import MetricsFollower
from tui_nn.runs.history import load_history
from tui_nn.textsafe import clean_line
from tui_nn.tui.history import RunHistory, extra_scalars
from tui_nn.tui.screens.worker_errors import notify_worker_error
from tui_nn.tui.viewer_app import ViewerApp
from tui_nn.tui.widgets.curves import Curves
from tui_nn.tui.widgets.event_log import EventLog
from tui_nn.tui.widgets.run_status import RunStatus
from tui_nn.tui.widgets.run_memory import run_memory_from
from tui_nn.tui.widgets.system_pane import SystemPane

POLL_S = 0.25  # new lines show within POLL_S + POST_S: under a second
POST_S = 0.5  # the UI applies new records at most twice a second
STATUS_S = 2.0  # how often liveness (a /proc scan at worst) is checked
FINAL = ("finished", "stopped", "failed")


class RecordsArrived(Message):
    """New records from metrics.jsonl, and the run's status when it was (re)checked."""

    def __init__(self, records: list[dict[str, Any]], status: str | None,
                 pid: int | None, first: bool = False,
                 honours: tuple[str, ...] | None = None) -> None:
        super().__init__()
        self.records = records
        self.status = status
        self.pid = pid
        self.first = first
        self.honours = honours  # the requests the run acts on (asked with the status)


class FollowProblem(Message):
    """metrics.jsonl cannot be read (a FIFO, a symlink, a device): said once in the log."""

    def __init__(self, problem: str) -> None:
        super().__init__()
        self.problem = problem



@dataclass
class _Batch:
    """What one batch of records changed, applied to the widgets once."""

    rebuild: bool = False
    ended: bool = False
    latest: ev.StepMetrics | None = None
    epoch: ev.EpochMetrics | None = None
    best_epoch: int | None = None
    new_epochs: list = field(default_factory=list)


# The keys that steer a run, the same in `watch` and `fleet`: each screen has action_steer
# (what: toggle, checkpoint or lr) and action_stop_run (asks first).
STEER_BINDINGS = (
    Binding("p", "steer('toggle')", "Pause/resume"),
    Binding("c", "steer('checkpoint')", "Checkpoint"),
    Binding("l", "steer('lr')", "Halve lr"),
    Binding("x", "stop_run", "Stop run"),
)


class WatchScreen(Screen):
    """One run, followed from its directory: status, curves, events, system."""

    DEFAULT_CSS = """
    #watch-row { height: 1fr; }
    #watch-side { width: 36; height: 1fr; border-right: vkey $surface-lighten-2; }
    .-wide #watch-side, .-very-wide #watch-side { width: 44; }
    #watch-main { width: 1fr; height: 1fr; }
    #watch-side SystemPane { margin-top: 1; border-top: solid $surface-lighten-2; }
    #watch-log { height: 1fr; min-height: 3; border-top: solid $surface-lighten-2;
                 padding: 0 0 0 1; overflow-x: hidden; }
    """

    BINDINGS = [
        Binding("left_square_bracket", "smoothing(-1)", "Less smoothing", show=False),
        Binding("right_square_bracket", "smoothing(1)", "More smoothing", show=False),
        Binding("g", "toggle_log_scale", "Log axis"),
        Binding("escape", "back", "Back", show=False),
        # Steering, through the run's control channel (shown only while there is one).
        *STEER_BINDINGS,
    ]
    STEER_ACTIONS = ("steer", "stop_run")

    def __init__(self, run_dir: str | Path, *, poll_s: float = POLL_S,
                 gpu_reader: Callable[[], Any] | None = None,
                 liveness_of: Callable[..., tuple[str, int | None]] | None = None) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.poll_s = poll_s
        self.gpu_reader = gpu_reader
        # A mirrored remote run (runs.remote.FollowedRun) says itself whether it is alive.
        self.liveness_of = liveness_of or self._liveness
        self.history = RunHistory()
        self.status = "loading"
        self.started: ev.RunStarted | None = None
        self.final: ev.Finished | ev.Failed | None = None
        self.epochs_seen = 0  # EpochMetrics records applied (tests)
        self.records_seen = 0
        self._steps_seen = 0  # last step applied to the curves
        self._paused = False  # the run's last StateChanged said paused
        self.skipped_records = 0  # records of an unexpected shape, not applied
        self.steerable = False  # the run has a control channel this user may use
        self.honours: tuple[str, ...] = ACTIONS  # of those, what the run acts on (it says)
        self.steer_reason = "no control channel"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with Horizontal(id="watch-row"):
            with Vertical(id="watch-side"):
                yield RunStatus(id="status")
                kwargs = {"gpu_reader": self.gpu_reader} if self.gpu_reader else {}
                yield SystemPane(id="system", pid=None,
                                 process_note="looking for the training process…", **kwargs)
                yield EventLog(id="watch-log")
            with Vertical(id="watch-main"):
                yield Curves(self.history, id="curves")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "tui-nn watch"
        self._update_subtitle()
        self.query_one(EventLog).min_width = 10  # wrap at the pane's width (RichLog: 78)
        _, problem = records.read_config(self.run_dir)
        if problem:
            self._log(problem, "warning")
        # Curves pace their redraws; this picks up one a paced tick skipped, once a second.
        self.set_interval(1.0, self._frame)
        self.set_interval(1.0, self._check_channel)
        self._check_channel()
        self._follow()

    def _frame(self) -> None:
        if self.status in ("running", "paused"):
            self.query_one(Curves).tick()

    # ---- the follower (thread: never touches a widget) -------------------------------------
    @work(thread=True, name="follow", group="follow", exclusive=True, exit_on_error=False)
    def _follow(self) -> None:
        worker = get_current_worker()
        follower = MetricsFollower(self.run_dir)
        metrics = records.metrics_path(self.run_dir)
        pid: int | None = None
        last_status = 0.0
        first = True
        ended = False
        pending: list[dict[str, Any]] = []
        last_post = 0.0
        problem: str | None = None
        warned_skips = False
        while not worker.is_cancelled:
            new = follower.poll()
            pending += new
            ended = ended or any(r["type"] in ("Finished", "Failed") for r in new)
            status = None
            now = time.monotonic()
            honours = None
            if first or now - last_status >= STATUS_S:
                last_status = now
                status, pid = self.liveness_of(metrics, pid, ended)
                honours = self._honours() if status == "running" else None
            # At most POST_S apart (each batch costs the UI a layout), unless the run ended.
            if follower.problem != problem:
                problem = follower.problem
                if problem:
                    self.post_message(FollowProblem(problem))
            if follower.skipped and not warned_skips:  # once: a count would only repeat it
                warned_skips = True
                self.post_message(FollowProblem(
                    "skipped lines of metrics.jsonl that are not records (bad JSON, nested "
                    "too deep, over 1 MB, or fields of the wrong type)"))
            if status is not None or (pending and (ended or now - last_post >= POST_S)):
                self.post_message(RecordsArrived(pending, status, pid, first, honours))
                pending, last_post = [], now
            first = False
            if not follower.behind:
                time.sleep(self.poll_s)

    def _honours(self) -> tuple[str, ...] | None:
        """Which requests the live run acts on (a tui_nn.Run loop may poll only some)."""
        from tui_nn.engine.channel import is_steerable, query_honours
        steerable = is_steerable(self.run_dir)[0]
        # A short wait: this thread also follows the records (a miss is asked again later).
        return query_honours(self.run_dir, timeout=1.0) if steerable else None

    @staticmethod
    def _liveness(metrics: Path, pid: int | None, ended: bool) -> tuple[str, int | None]:
        """("running" | "ended" | "interrupted", writer pid)."""
        if pid is not None and liveness.still_writing(pid, metrics):
            return "running", pid
        pid = liveness.writer_pid(metrics) if metrics.exists() else None
        if pid is not None:
            return "running", pid
        if ended:
            return "ended", None
        try:
            mtime = metrics.stat().st_mtime
        except OSError:
            mtime = None
        # Without /proc (macOS) or for another user's run the scan sees nothing: then a write
        # in the last two minutes means running (see tui_nn.runs.liveness).
        trusted = os.path.isdir("/proc/self/fd") and liveness.scan_is_trusted(metrics)
        alive = liveness.is_alive(metrics.parent, mtime, None)
        return ("running" if alive and not trusted else "interrupted"), None

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """The one place this screen's worker failures surface: a notification."""
        notify_worker_error(self, event)

    # ---- applying records (UI thread) ------------------------------------------------------
    def on_follow_problem(self, message: FollowProblem) -> None:
        self._log(message.problem, "warning")

    def on_records_arrived(self, message: RecordsArrived) -> None:
        """Records become the engine's own events (schema.decode, the one decoder), then
        the history, the status and the log take them; widgets get the newest values once
        per batch (a first read may hold thousands of records)."""
        batch = _Batch()
        for raw in message.records:
            self.records_seen += 1
            event = schema.decode(raw) if raw.get("type") in ev.PERSISTED else None
            if event is None:
                if raw.get("type") in ev.PERSISTED:  # a field of the wrong type or missing
                    self._note_skipped()
                continue
            self._apply(event, batch, message.first)
        self._show_batch(batch, message.first)
        if batch.rebuild:
            self._rebuild()
        if message.honours is not None and message.honours != self.honours:
            self.honours = message.honours
            self.refresh_bindings()
        if message.status is not None:
            self._apply_status(message.status, message.pid)
        elif batch.ended:
            self._apply_status("ended", self.query_one(SystemPane).pid)
        curves = self.query_one(Curves)
        if message.first or batch.rebuild or self.status not in ("running", "paused"):
            curves.redraw()
        else:
            curves.tick()

    def _apply(self, e: ev.Event, batch: "_Batch", first_read: bool) -> None:
        if isinstance(e, ev.StepMetrics):
            if e.first_step <= self._steps_seen:
                batch.rebuild = True  # a resumed session redoing steps
            else:
                self.history.add_steps(e.first_step, list(e.losses), extra_scalars(e.scalars))
            self._steps_seen = max(self._steps_seen, e.step)
            batch.latest = e
        elif isinstance(e, ev.EpochMetrics):
            self.history.add_epoch(e.epoch, e.step, e.train_loss, e.val_loss, e.value)
            batch.epoch = e
            if e.is_best:
                batch.best_epoch = e.epoch + 1
            self.epochs_seen += 1
            if not first_read:
                batch.new_epochs.append(e)
        elif isinstance(e, ev.RunStarted):
            self._apply_started(e, batch)
        elif isinstance(e, ev.StateChanged):
            self._log(clean_line(e.state, 40), "dim")
            self._paused = e.state == "paused"
            if self.status in ("running", "paused"):
                self._set_status("paused" if self._paused else "running")
        elif isinstance(e, ev.CheckpointSaved) and e.reason != "best":
            # best.pt is written with every better epoch: the epoch line's * says so.
            self._log(f"checkpoint ({clean_line(e.reason, 40)}, step {e.step})", "dim")
        elif isinstance(e, (ev.LrScaled, ev.Notice)):
            self._log(f"lr × {e.factor:g} → {e.lr:.3g}" if isinstance(e, ev.LrScaled)
                      else clean_line(e.message, 300), "dim")
        elif isinstance(e, (ev.Finished, ev.Failed)):
            self.final = e
            batch.ended = True
            self._log_final(e)

    def _apply_started(self, e: ev.RunStarted, batch: "_Batch") -> None:
        if self.started is not None or e.start_step:
            batch.rebuild = True
        self.started, self.final, self._paused = e, None, False
        self.history.metric = clean_line(e.metric or "accuracy", 20)
        self.query_one(RunStatus).started = e
        self.query_one(Curves).set_axis(0, e.total_steps)
        # What the trainer measured at setup (no prediction here: that would trace the model).
        self.query_one(SystemPane).run_memory = run_memory_from(e)
        on = f" on {clean_line(e.dataset, 80)}" if e.dataset not in ("", "-") else ""
        self._log(f"{'resumed' if e.start_step else 'started'} {clean_line(e.model, 80)}{on}",
                  "good")
        sizes = [f"{n} {unit}" for n, unit in ((e.epochs, "epochs"),
                                                 (e.steps_per_epoch, "steps")) if n]
        self._log(", ".join([" x ".join(sizes)] * bool(sizes) + [clean_line(e.device_name, 60)]),
                  "dim")  # 0: a size the loop did not give (tui_nn.Run), left out

    def _show_batch(self, batch: "_Batch", first_read: bool) -> None:
        if len(batch.new_epochs) > 3:  # fast epochs: one line per poll, not a flood
            self._log_epoch(batch.new_epochs[-1], first=batch.new_epochs[0].epoch)
        else:
            for e in batch.new_epochs:
                self._log_epoch(e)
        status = self.query_one(RunStatus)
        if batch.best_epoch is not None:  # before epoch: RunStatus redraws when epoch is set
            status.best_epoch = batch.best_epoch
        if batch.latest is not None:
            status.latest = batch.latest
            self.query_one(SystemPane).data_wait = batch.latest.data_wait
        if batch.epoch is not None:
            status.epoch = batch.epoch
        if first_read and self.history.epochs and self.final is None:
            self._log(f"{len(self.history.epochs)} epochs recorded so far", "dim")

    def _apply_status(self, liveness_status: str, pid: int | None) -> None:
        pane = self.query_one(SystemPane)
        if self.final is not None:
            state = self.final.status if isinstance(self.final, ev.Finished) else "failed"
        elif liveness_status == "running":
            state = "paused" if self._paused else "running"
        elif self.started is None and not self.records_seen:
            state = "waiting" if liveness_status == "running" else "empty"
        else:
            state = "interrupted"
        self._set_status(state)
        note = None if pid is not None else (
            f"run {state}: no training process" if state not in ("running", "paused")
            else "training process not visible (another user's run?)")
        if pane.pid != pid or pane.process_note != note:
            pane.pid, pane.process_note = pid, note
            pane.refresh_now()

    def _set_status(self, state: str) -> None:
        if state == self.status:
            return
        self.status = state
        self.query_one(RunStatus).state = state
        self._update_subtitle()
        self.query_one(Curves).live = state in ("running", "paused")
        self._check_channel()

    def _rebuild(self) -> None:
        """Curves from scratch, as tui_nn.runs reads a resumed run (redone steps once)."""
        h = load_history(self.run_dir)
        self.history.reset(h.metric or self.history.metric)
        self.history.add_steps(h.steps[0] if h.steps else 1, list(h.losses))
        for e in h.epochs:
            self.history.add_epoch(e.epoch, e.step, e.train_loss, e.val_loss, e.value)
        self._steps_seen = h.steps[-1] if h.steps else 0

    # ---- log -------------------------------------------------------------------------------
    def _log_epoch(self, e: ev.EpochMetrics, first: int | None = None) -> None:
        from tui_nn.fmt import fmt_metric

        total = self.started.epochs if self.started is not None else "?"
        total = f"/{total}" if total else ""  # 0: the loop gave no epoch count
        name = "acc" if e.metric == "accuracy" else e.metric
        which = f"epochs {first + 1}–{e.epoch + 1}" if first is not None else f"epoch {e.epoch + 1}"
        self._log(f"{which}{total} · loss {e.train_loss:.4g} · val "
                  f"{e.val_loss:.4g} · {name} {fmt_metric(e.metric, e.value)}"
                  f"{' *' if e.is_best else ''}")

    def _log_final(self, e: ev.Finished | ev.Failed) -> None:
        if isinstance(e, ev.Finished):
            # A loop that logs no epochs (tui_nn.Run) did not give "0 epochs": left out.
            epochs = f"{e.epochs_done} epochs, " if e.epochs_done or self.history.epochs else ""
            self._log(f"run {clean_line(e.status, 20)}: {epochs}{e.step:,} steps", "good")
        else:
            self._log(f"failed ({clean_line(e.kind, 20)}): {clean_line(e.message, 2000)}",
                      "error")

    def _note_skipped(self) -> None:
        self.skipped_records += 1
        if self.skipped_records == 1:  # one warning, not one per bad line
            self._log("skipped a record of an unexpected shape (more are counted, not shown)",
                      "warning")

    def _log(self, text: str, level: str = "info") -> None:
        self.query_one(EventLog).add(text, level)

    # ---- steering (the run's control channel; quitting never stops the run) ----------------
    def _check_channel(self) -> None:
        from tui_nn.engine.channel import is_steerable
        steerable, reason = is_steerable(self.run_dir)
        if steerable and self.status not in ("running", "paused"):
            # A killed run leaves its socket behind: a run that is not live takes nothing.
            steerable, reason = False, f"the run is {self.status}: nothing to steer"
        if (steerable, reason) != (self.steerable, self.steer_reason):
            self.steerable, self.steer_reason = steerable, reason
            self._update_subtitle()
            self.refresh_bindings()

    def _update_subtitle(self) -> None:
        """run · state · whether this viewer can steer it (keys p c l x) or only read."""
        state = "" if self.status == "loading" else f" · {self.status}"
        how = "steerable" if self.steerable else "read-only"
        self.sub_title = f"{clean_line(self.run_dir.name, 60)}{state} · {how}"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.STEER_ACTIONS and not self.steerable:
            return False  # hidden from the footer: there is nothing to steer
        if action == "stop_run":
            return "stop" in self.honours
        if action == "steer":  # a tui_nn.Run loop that never polls a request: its key hidden
            what = {"toggle": "pause"}.get(str(parameters[0]), str(parameters[0]))
            return what in self.honours
        return True

    def action_steer(self, what: str) -> None:
        if what == "toggle":
            what = "resume" if self._paused else "pause"
        self._send(what, 0.5 if what == "lr" else None)

    def action_stop_run(self) -> None:
        from tui_nn.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self._send("stop", None)

        self.app.push_screen(ConfirmScreen(
            f"Stop the run {self.run_dir.name}? It checkpoints and ends "
            "(resume it later with tui-nn train --resume).", confirm="Stop run"), answered)

    @work(thread=True, name="steer", group="steer", exit_on_error=False)
    def _send(self, action: str, factor: float | None) -> None:
        from tui_nn.engine.channel import ChannelError, send
        try:
            answer = send(self.run_dir, action, factor)
        except ChannelError as e:
            self.app.call_from_thread(self.notify, str(e), title="cannot steer",
                                      severity="warning")
            return
        if answer.get("ok"):
            what = "lr × 0.5" if action == "lr" else action
            self.app.call_from_thread(self.notify, f"{what}: taken by the run",
                                      title="steered")
        else:
            self.app.call_from_thread(self.notify, str(answer.get("error")),
                                      title="refused", severity="warning")

    # ---- actions ---------------------------------------------------------------------------
    def action_smoothing(self, direction: int) -> None:
        self.query_one(Curves).cycle_smoothing(direction)

    def action_toggle_log_scale(self) -> None:
        curves = self.query_one(Curves)
        curves.log_scale = not curves.log_scale

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


class WatchApp(ViewerApp):
    """`tui-nn watch RUN_DIR`: the WatchScreen alone."""

    def __init__(self, run_dir: str | Path, *, poll_s: float = POLL_S,
                 gpu_reader: Callable[[], Any] | None = None,
                 liveness_of: Callable[..., tuple[str, int | None]] | None = None) -> None:
        super().__init__(WatchScreen(run_dir, poll_s=poll_s, gpu_reader=gpu_reader,
                                     liveness_of=liveness_of))

    def get_system_commands(self, screen: Screen):
        yield from super().get_system_commands(screen)
        if isinstance(screen, WatchScreen):
            yield SystemCommand("Curves: toggle log axis", "Loss on a log10 axis (g)",
                                screen.action_toggle_log_scale)
            yield SystemCommand("Curves: more smoothing", "Raise the EMA weight (])",
                                lambda: screen.action_smoothing(1))
            yield SystemCommand("Curves: less smoothing", "Lower the EMA weight ([)",
                                lambda: screen.action_smoothing(-1))


def make_watch_app(run_dir: str | Path, **kwargs: Any) -> WatchApp:
    return WatchApp(run_dir, **kwargs)
