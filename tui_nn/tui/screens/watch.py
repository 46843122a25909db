"""`tui-nn watch`: the app, read-only, following a run directory that another process writes
(a headless run under nohup, Slurm or torchrun, or an app in another terminal).

A thread worker polls metrics.jsonl (tui_nn.runs.follow: one stat() when nothing changed, only
the appended bytes otherwise) every POLL_S and posts the new records; every STATUS_S it also
asks tui_nn.runs.liveness whether a process still writes the file. The screen decodes the records
into the engine's events and feeds them to a RunView, the widget the Train tab draws its run with;
the system pane follows the writing process. Nothing here opens a file of the run for writing.
"""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import get_current_worker

from tui_nn.engine import events as ev
from tui_nn.engine import schema
from tui_nn.engine.channel import ACTIONS
from tui_nn.runs import liveness, records
from tui_nn.runs.follow import MetricsFollower
from tui_nn.runs.history import load_history
from tui_nn.tui.markup import markup_data
from tui_nn.tui.history import RunHistory, extra_scalars
from tui_nn.tui.screens.worker_errors import NotifiesWorkerErrors
from tui_nn.tui.viewer_app import ViewerApp
from tui_nn.tui.widgets.event_log import EventLog
from tui_nn.tui.widgets.run_view import RunView
from tui_nn.tui.widgets.system_pane import SystemPane

POLL_S = 0.25  # new lines show within POLL_S + POST_S: under a second
POST_S = 0.5  # the UI applies new records at most twice a second
STATUS_S = 2.0  # how often liveness (a process scan at worst) is checked


@dataclass
class RecordsArrived(Message):
    """New records from metrics.jsonl, and the run's status when it was (re)checked."""

    records: list[dict[str, Any]]
    status: str | None
    pid: int | None
    first: bool = False
    honours: tuple[str, ...] | None = None  # the requests the run acts on (asked with the status)


@dataclass
class FollowProblem(Message):
    """metrics.jsonl cannot be read (a FIFO, a symlink, a device): said once in the log."""

    problem: str



# The keys that steer a run, the same in `watch` and `fleet`: each screen has action_steer
# (what: toggle, checkpoint or lr) and action_stop_run (asks first).
STEER_BINDINGS = (
    Binding("p", "steer('toggle')", "Pause/resume"),
    Binding("c", "steer('checkpoint')", "Checkpoint"),
    Binding("l", "steer('lr')", "Halve lr"),
    Binding("x", "stop_run", "Stop run"),
)


class WatchScreen(NotifiesWorkerErrors, Screen):
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
        kwargs = {"gpu_reader": self.gpu_reader} if self.gpu_reader else {}
        system = SystemPane(id="system", pid=None,
                            process_note="looking for the training process…", **kwargs)
        yield RunView(self.history, system, id="watch-row", prefix="watch", log_id="watch-log",
                      arrangement="side")
        yield Footer()

    @property
    def view(self) -> RunView:
        return self.query_one(RunView)

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
            self.view.curves.tick()

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
        # Off Linux (macOS) or for another user's run the scan sees nothing: then a write
        # in the last two minutes means running (see tui_nn.runs.liveness).
        trusted = liveness.scan_is_trusted(metrics)
        alive = liveness.is_alive(metrics.parent, mtime, None)
        return ("running" if alive and not trusted else "interrupted"), None

    # ---- applying records (UI thread) ------------------------------------------------------
    def on_follow_problem(self, message: FollowProblem) -> None:
        self._log(message.problem, "warning")

    def on_records_arrived(self, message: RecordsArrived) -> None:
        """Records become the engine's own events (schema.decode, the one decoder); this screen
        keeps the history and the run's state, the RunView shows each event (as the Train tab
        does), gathering steps and epochs into one update per batch (a first read may hold
        thousands of records)."""
        view, rebuild, ended = self.view, False, False
        view.log_epochs = not message.first  # a first read: a count, not every past epoch
        for raw in message.records:
            self.records_seen += 1
            event = schema.decode(raw) if raw.get("type") in ev.PERSISTED else None
            if event is None:
                if raw.get("type") in ev.PERSISTED:  # a field of the wrong type or missing
                    self._note_skipped()
                continue
            rebuild = self._keep(event) or rebuild
            ended = ended or isinstance(event, (ev.Finished, ev.Failed))
            view.apply(event)
        view.flush()
        view.log_epochs = True
        if message.first and self.history.epochs and view.final is None:
            self._log(f"{len(self.history.epochs)} epochs recorded so far", "dim")
        if rebuild:
            self._rebuild()
        if message.honours is not None and message.honours != self.honours:
            self.honours = message.honours
            self.refresh_bindings()
        if message.status is not None:
            self._apply_status(message.status, message.pid)
        elif ended:
            self._apply_status("ended", view.system.pid)
        if message.first or rebuild or self.status not in ("running", "paused"):
            view.curves.redraw()
        else:
            view.curves.tick()

    def _keep(self, e: ev.Event) -> bool:
        """The history and the run state an event changes; True: the curves need a rebuild
        (a resumed session redoing steps, or a new session in the same file)."""
        if isinstance(e, ev.StepMetrics):
            redone = e.first_step <= self._steps_seen
            if not redone:
                self.history.add_steps(e.first_step, list(e.losses), extra_scalars(e.scalars))
            self._steps_seen = max(self._steps_seen, e.step)
            return redone
        if isinstance(e, ev.EpochMetrics):
            self.history.add_epoch(e.epoch, e.step, e.train_loss, e.val_loss, e.value)
            self.epochs_seen += 1
        elif isinstance(e, ev.RunStarted):
            self._paused = False
            return self.view.started is not None or bool(e.start_step)
        elif isinstance(e, ev.StateChanged):
            self._paused = e.state == "paused"
            if self.status in ("running", "paused"):
                self._set_status("paused" if self._paused else "running")
        return False

    def _apply_status(self, liveness_status: str, pid: int | None) -> None:
        pane, final = self.view.system, self.view.final
        if final is not None:
            state = final.status if isinstance(final, ev.Finished) else "failed"
        elif liveness_status == "running":
            state = "paused" if self._paused else "running"
        elif self.view.started is None and not self.records_seen:
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
        self.view.status.state = state
        self._update_subtitle()
        self.view.curves.live = state in ("running", "paused")
        self._check_channel()

    def _rebuild(self) -> None:
        """Curves from scratch, as tui_nn.runs reads a resumed run (redone steps once)."""
        h = load_history(self.run_dir)
        self.history.load(h)
        self._steps_seen = h.steps[-1] if h.steps else 0

    # ---- log -------------------------------------------------------------------------------
    def _note_skipped(self) -> None:
        self.skipped_records += 1
        if self.skipped_records == 1:  # one warning, not one per bad line
            self._log("skipped a record of an unexpected shape (more are counted, not shown)",
                      "warning")

    def _log(self, text: str, level: str = "info") -> None:
        self.view.note(text, level)

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
        name = self.run_dir.name  # made inert where titles are shown (viewer_app.InertText)
        self.sub_title = f"{name if len(name) <= 60 else name[:60] + '…'}{state} · {how}"

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

        self.app.push_screen(ConfirmScreen(  # the question is markup: the name is data in it
            f"Stop the run {markup_data(self.run_dir.name[:60])}? It checkpoints and ends "
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
        self.view.curves.cycle_smoothing(direction)

    def action_toggle_log_scale(self) -> None:
        curves = self.view.curves
        curves.log_scale = not curves.log_scale

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()


class WatchApp(ViewerApp):
    """`tui-nn watch RUN_DIR`: the WatchScreen alone."""

    def __init__(self, run_dir: str | Path, **kwargs: Any) -> None:
        super().__init__(WatchScreen(run_dir, **kwargs))

    def get_system_commands(self, screen: Screen):
        yield from super().get_system_commands(screen)
        if isinstance(screen, WatchScreen):
            yield SystemCommand("Curves: toggle log axis", "Loss on a log10 axis (g)",
                                screen.action_toggle_log_scale)
            yield SystemCommand("Curves: more smoothing", "Raise the EMA weight (])",
                                lambda: screen.action_smoothing(1))
            yield SystemCommand("Curves: less smoothing", "Lower the EMA weight ([)",
                                lambda: screen.action_smoothing(-1))
