"""The one place the engine meets the UI.

A Textual thread worker runs ``Trainer.run()`` — the same engine as ``tui-nn train --headless``.
The engine's callback runs on that worker thread and never touches a widget or a reactive: it
appends step losses to the plain-Python ``RunHistory`` and posts messages (``post_message`` is
thread-safe and never waits for the UI). Step and epoch progress share one message type,
throttled to ``max_rate`` per second and replaceable, so a busy UI handles only the newest;
run start, checkpoint, pause/resume and end-of-run messages always go through.

The UI controls the run through the engine's thread-safe ``pause/resume/stop/
request_checkpoint``; it never waits on the training thread except when quitting.
"""

from __future__ import annotations

import gc
import threading
from collections import deque
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual.message_pump import MessagePump
from textual.worker import Worker, WorkerState

from tui_nn.tui import messages as msg
from tui_nn.tui.history import RunHistory
from tui_nn.tui.live_insight import LiveInsightState

if TYPE_CHECKING:  # the engine imports torch; the bridge module is imported at app start
    from tui_nn.engine import events as ev

WORKER_NAME = "training"


def in_fresh_thread(fn: Callable[[], Any], name: str) -> Any:
    """Call ``fn`` on a new thread that ends with it, and return its result (or raise).

    Called from a Textual thread worker, which waits. Why: PyTorch's CPU ops run on an OpenMP
    thread team owned by the thread that calls them, and the team lives as long as that
    thread. Textual's workers are pooled, long-lived threads, so torch work done on them
    leaves teams behind; with more OpenMP threads alive than cores, libgomp stops spin-waiting
    and every parallel region pays for futex wake-ups (measured: a CPU run 30% slower on 2
    cores). A thread per run (and per inspection) takes its team with it when it ends."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=name)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def freeze_long_lived(*, collect: bool) -> None:
    """Move every object alive now out of the cyclic collector's reach (``gc.freeze``).

    Why: torch's import leaves about 5e5 objects that live as long as the process, and every
    generation-2 collection walks them all while holding the GIL, on whichever thread happens
    to allocate: measured 0.17-0.19 s a collection, 5 on the UI thread and 2 on the training
    thread in one 3-epoch cnn run of the app, each a frozen screen and a stalled step.
    ``collect``: first collect what is garbage now (objects frozen while garbage are never
    freed), unfreezing earlier freezes so that a finished run's cycles are not kept forever;
    it walks everything once (about 0.2 s), so it is done where a run starts, not per step."""
    if collect:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


class TrainingBridge:
    """Runs one training run at a time in a thread worker owned by ``target``."""

    def __init__(self, target: MessagePump, history: RunHistory | None = None, *,
                 max_rate: float = 2.0) -> None:
        self.target = target
        self.history = history or RunHistory()
        self.insight = LiveInsightState()  # gradient flow, fit line, predictions (Insight tab)
        self.min_interval_s = 1.0 / max_rate
        self.worker: Worker | None = None
        # Every epoch, for the UI's log (progress posts are throttled: one may stand for many
        # epochs); a deque: appended on the training thread, taken on the UI thread.
        self._unshown_epochs: deque["ev.EpochMetrics"] = deque()
        self.resuming = False  # the run continues one on disk: its history is loaded first
        self.done = threading.Event()  # set when the training thread has returned
        self.done.set()
        self._lock = threading.Lock()
        self._forget_run()

    def _forget_run(self) -> None:
        """What a run leaves here: nothing before the first, and reset when the next starts."""
        self.trainer: Any = None  # tui_nn.engine.Trainer, imported lazily (torch)
        self.started: "ev.RunStarted | None" = None
        self.latest: "ev.StepMetrics | None" = None  # newest step metrics (read by the UI)
        self.latest_epoch: "ev.EpochMetrics | None" = None  # newest epoch metrics
        self._unshown_epochs.clear()
        self.last_checkpoint: str | None = None
        self.result: "ev.Finished | ev.Failed | None" = None
        self._last_post = 0.0
        self._requests = {"pause": False, "stop": False, "checkpoint": False}

    # ---- lifecycle (UI thread) ---------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True from start() until the worker has returned."""
        return self.worker is not None and self.worker.state in (WorkerState.PENDING,
                                                                 WorkerState.RUNNING)

    @property
    def paused(self) -> bool:
        return self.trainer is not None and self.running and self.trainer.paused

    def start(self, config: Any, *, model: Any = None, model_factory: Callable[[], Any] | None
              = None, dataset: Any = None, resume_from: str | Path | None = None) -> Worker:
        """Start training ``config`` (a TrainConfig) in a background thread.

        ``model_factory`` builds the model on the training thread (a user's model from a file:
        its weights are initialised where the run's CPU threads live, see in_fresh_thread).
        ``resume_from`` continues a run directory; its recorded curves come into the history
        first, so the UI's curves continue rather than restart."""
        if self.running:
            raise RuntimeError("a run is already in progress")
        from tui_nn.engine import Trainer

        self.history.reset()
        self.insight.reset()
        self._forget_run()
        self.done.clear()

        self.resuming = resume_from is not None

        def train() -> Any:  # on the run's own thread
            try:
                if resume_from is not None:
                    self._load_recorded(resume_from)
                built = model_factory() if model_factory is not None else model
                trainer = Trainer(config, self._on_event, model=built, dataset=dataset,
                                  resume_from=resume_from)
                freeze_long_lived(collect=True)  # the model and data live as long as the run
                with self._lock:  # control requests made while the model was being built
                    self.trainer = trainer
                    if self._requests["stop"]:
                        trainer.stop()
                    elif self._requests["pause"]:
                        trainer.pause()
                    if self._requests["checkpoint"]:
                        trainer.request_checkpoint()
                return trainer.run()
            finally:
                self.done.set()

        self.worker = self.target.run_worker(
            lambda: in_fresh_thread(train, "tui-nn-training"), name=WORKER_NAME,
            group=WORKER_NAME, description=f"training {config.model}", thread=True,
            exclusive=True, exit_on_error=False)
        return self.worker

    def _load_recorded(self, resume_from: str | Path) -> None:
        """A resumed run's curves so far, from its metrics.jsonl (training thread: a long run's
        file takes a while to read). RunStarted then cuts them back to the checkpoint."""
        from tui_nn.engine.rundir import run_dir_of
        from tui_nn.runs.history import load_history

        self.history.load(load_history(run_dir_of(resume_from)))
        self.target.post_message(msg.RecordedHistoryLoaded())

    def _control(self, request: str, value: bool, apply: Callable[[Any], None]) -> None:
        with self._lock:
            self._requests[request] = value
            if self.trainer is not None:
                apply(self.trainer)

    def pause(self) -> None:
        self._control("pause", True, lambda t: t.pause())

    def resume(self) -> None:
        self._control("pause", False, lambda t: t.resume())

    def stop(self) -> None:
        """Ask the run to stop after the current step; it then writes a checkpoint."""
        self._control("stop", True, lambda t: t.stop())

    def request_checkpoint(self) -> None:
        self._control("checkpoint", True, lambda t: t.request_checkpoint())

    def scale_lr(self, factor: float) -> bool:
        """Scale the running trainer's lr (applied before its next step); False before the
        trainer exists."""
        with self._lock:
            if self.trainer is None:
                return False
            self.trainer.scale_lr(factor)
            return True

    def take_epochs(self) -> list["ev.EpochMetrics"]:
        """The epochs ended since the last call, oldest first (UI thread)."""
        taken = []
        while self._unshown_epochs:
            taken.append(self._unshown_epochs.popleft())
        return taken

    async def wait(self) -> None:
        """Wait (without blocking the UI) until the worker has returned."""
        if self.worker is not None:
            try:
                await self.worker.wait()
            except Exception:  # noqa: BLE001 - the Worker.StateChanged handler reports it
                pass

    # ---- the engine callback (training thread) ---------------------------------------------
    def _on_event(self, event: "ev.Event") -> None:
        from tui_nn.engine import events as ev  # already imported by the Trainer: a dict lookup
        from tui_nn.engine.schema import inert_event

        event = inert_event(event)  # what the views show is inert, as watch's records are
        post = self.target.post_message
        if isinstance(event, ev.StepMetrics):
            self.history.add_steps(event.first_step, event.losses, event.scalars)
            self.latest = event
            self._progress(post)
        elif isinstance(event, ev.EpochMetrics):
            # A toy model can finish thousands of (one-step) epochs a second: epochs go through
            # the same throttle as steps. The UI reads every epoch from the history.
            self.history.add_epoch(event.epoch, event.step, event.train_loss, event.val_loss,
                                   event.value)
            self.latest_epoch = event
            self._unshown_epochs.append(event)
            self._progress(post)
        elif isinstance(event, ev.RunStarted):
            if self.resuming:  # the steps after the checkpoint are trained again
                self.history.rewind(event.start_step, event.start_epoch, event.metric)
            else:
                self.history.reset(event.metric)
            self.insight.reset()
            self.started = event
            post(msg.TrainingStarted(event))
        elif isinstance(event, ev.CheckpointSaved):
            if event.reason != "best":
                self.last_checkpoint = event.path
            post(msg.CheckpointWritten(event))
        elif isinstance(event, ev.StateChanged):
            post(msg.TrainingStateChanged(event))
        elif isinstance(event, (ev.NonFiniteLoss, ev.LrScaled, ev.Notice)):
            post(msg.TrainingAlert(event))
        elif isinstance(event, (ev.Finished, ev.Failed)):
            self.result = event
            post(msg.TrainingEnded(event))
        elif self.insight.add(event):  # read by the Insight tab on its frame timer
            if isinstance(event, ev.GradientFlow) and event.snapshot.warnings:
                post(msg.GradientWarnings(event.step, event.snapshot.warnings))

    def _progress(self, post) -> None:
        """Leading-edge throttle: at most ``max_rate`` posts a second. What a skipped post would
        have said is in ``latest``/``latest_epoch``/``history``; the UI picks it up with the next
        message, or from its own redraw timer, or at the end of the run."""
        now = time.monotonic()
        if now - self._last_post >= self.min_interval_s:
            self._last_post = now
            post(msg.TrainingProgress(self.latest, self.latest_epoch))
