"""The tui-nn Textual app: ``make_app(...)`` is shared by the CLI, the tests and the screenshot
script. Importing this module does not import torch, so the first frame comes up quickly;
the zoo (and torch) load in a background thread after it.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from tui_nn.tui.exits import install_signal_exits, signal_code
from tui_nn.tui.screens.confirm import ConfirmScreen
from tui_nn.tui.screens.main import MainScreen
from tui_nn.tui.viewer_app import InertText


class TuiNNApp(InertText, App[None]):
    """Pick a model, see its shapes, train it and watch it learn."""

    TITLE = "tui-nn"

    BINDINGS = [
        Binding("q", "quit", "Quit", tooltip="Quit (asks first while training)"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("r", "show_runs", "Runs", tooltip="Runs on disk: compare curves and settings"),
    ]

    def __init__(self, model: str | None = None, train_options: dict[str, Any] | None = None,
                 dataset: Any = None, start: bool = False, resume: str | None = None,
                 input_text: str | None = None, runs_roots: list[str] | None = None) -> None:
        super().__init__()
        self.runs_roots = list(runs_roots or [])  # what `r` lists; [] is runs_root() alone
        self.main = MainScreen(model=model, train_options=train_options, dataset=dataset,
                               start=start, resume=resume, input_text=input_text)
        self._quitting = False
        self.step_abandoned = False  # set when a signal gave up a step that never ended
        # Printed after the terminal is restored (exits.run_app): plain text, so a long path in
        # it is never cut or broken and a command in it copies whole.
        self.exit_text = ""

    def get_default_screen(self) -> Screen:
        return self.main

    def on_mount(self) -> None:
        # SIGTERM/SIGINT: stop the run (it checkpoints), restore the terminal, exit 128+sig.
        # SIGHUP (SSH dropped, tmux killed): the terminal is gone. A plain handler rather than
        # the loop's, because the UI thread may already be stuck writing to the dead terminal.
        install_signal_exits(self, self._on_signal, self._on_sighup)

    def _on_signal(self, signum: int) -> None:
        self.main.bridge.stop()  # first: the checkpoint must not depend on the UI
        if not self._quitting:
            self._quitting = True
            self.run_worker(self._stop_and_exit(signal_code(signum)), name="quit",
                            exit_on_error=False)
        elif not self.main.bridge.done.is_set():  # a second signal: the step is not awaited
            self._abandon_step(f"a second {signal.Signals(signum).name}", signal_code(signum))

    def _on_sighup(self, signum: int, frame: object) -> None:
        """Stop the run, wait for the training thread to write its checkpoint, and leave
        without touching the terminal (restoring a hung-up terminal blocks forever)."""
        from tui_nn.engine.stop_signals import stop_grace_s
        self.main.bridge.stop()
        self.main.bridge.done.wait(timeout=stop_grace_s())  # a stuck step: the last checkpoint
        os._exit(signal_code(signum))

    async def _stop_and_exit(self, return_code: int = 0) -> None:
        if not return_code:  # a quit the user confirmed: wait for the step, however long
            self.exit_text = await self.main.run.stop_for_quit()
        else:  # a signal: a step that never ends must not hold the exit (issue 26.6)
            import asyncio

            from tui_nn.engine.stop_signals import GRACE_ENV, stop_grace_s
            grace, bridge = stop_grace_s(), self.main.bridge
            was_training = not bridge.done.is_set()
            bridge.stop()
            # The training thread's own event: a Textual worker reads as done once cancelled.
            if not await asyncio.to_thread(bridge.done.wait, grace):
                self._abandon_step(f"it did not finish within {grace:g} s of the signal "
                                   f"(${GRACE_ENV})", return_code)
                return
            # Not stop_for_quit: the thread has returned, so the bridge no longer reads as
            # running and the checkpoint line would be left out.
            self.exit_text = self.main.run.stopped_text() if was_training else ""
        self.exit(return_code=return_code)

    def _abandon_step(self, why: str, return_code: int) -> None:
        """Leave while the training thread is still in its step; exits.run_app then ends the
        process (the last checkpoint was written whole before, and stays)."""
        self.step_abandoned = True
        self.exit_text = (f"tui-nn: stopped without waiting for the step: {why}; the last "
                          f"checkpoint is kept{self.main.run.resume_hint()}")
        self.exit(return_code=return_code)

    async def action_quit(self) -> None:
        """Quit; while a run is in progress ask first, then stop it and save a checkpoint."""
        if self._quitting:
            return
        if not self.main.bridge.running:
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen):
            return

        def answered(confirmed: bool | None) -> None:
            if confirmed and not self._quitting:
                self._quitting = True
                self.run_worker(self._stop_and_exit(), name="quit", exit_on_error=False)

        self.push_screen(ConfirmScreen(
            "A run is in progress.\nStop it, save a checkpoint and quit?",
            confirm="Stop & quit (y)", cancel="Keep training (n)"), answered)

    def runs_root(self) -> str:
        return str(self.main.pass_through.get("runs_root") or "runs")

    def action_show_runs(self) -> None:
        from tui_nn.tui.screens.runs import RunsScreen

        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen(self.runs_roots or self.runs_root()))

    def action_watch_newest(self) -> None:
        from tui_nn.runs import newest_run
        from tui_nn.tui.screens.tb_watch import watch_screen_for

        run = newest_run(self.runs_root())
        if run is None:
            self.notify(f"no runs under {self.runs_root()}/ yet", severity="warning",
                        markup=False)
            return
        self.push_screen(watch_screen_for(run.path))  # a run, or a TensorBoard log

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        main = self.main
        commands = [
            ("Start training", "Train the selected model with the form's values",
             main.action_start_training),
            ("Pause / resume training", "Pause the run, or resume it", main.action_toggle_pause),
            ("Stop training", "Stop after this step and save a checkpoint",
             main.action_stop_training),
            ("Save checkpoint now", "Write last.pt in the run directory", main.action_checkpoint),
            ("Resume a run", "Continue a stopped run from its checkpoint (u)",
             main.action_resume_run),
            ("Halve the learning rate", "Scale the running run's lr by 0.5 (l; after a NaN)",
             main.action_halve_lr),
            ("Show model picker", "Zoo models and the shape inspector",
             lambda: main.action_show_tab("model")),
            ("Show training", "Hyperparameters, run status and live curves",
             lambda: main.action_show_tab("train")),
            ("Show log", "Events and errors", lambda: main.action_show_tab("log")),
            ("Edit input shape", "Type a new input shape for the inspector",
             main.action_edit_input),
            ("Open model from file or factory", "path/to/model.py:Class or module:factory",
             main.action_open_source),
            ("Inspector: deeper", "Show one more level of the module tree",
             lambda: main.action_depth(1)),
            ("Inspector: shallower", "Show one level less", lambda: main.action_depth(-1)),
            ("Curves: more smoothing", "Raise the EMA weight", lambda: main.action_smoothing(1)),
            ("Curves: less smoothing", "Lower the EMA weight", lambda: main.action_smoothing(-1)),
            ("Curves: toggle log axis", "Loss on a log10 axis", main.action_toggle_log_scale),
            ("Show runs", "Runs on disk: overlay curves, compare settings (r)",
             self.action_show_runs),
            ("Watch the newest run", "Follow the newest run's directory, read-only",
             self.action_watch_newest),
            ("Insight: gradient flow", "Per-layer gradient norms while training (live)",
             lambda: main.action_show_insight("flow")),
            ("Insight: vanishing gradients", "A deep sigmoid MLP against the same net with ReLU",
             lambda: main.action_show_insight("vanish")),
            ("Insight: live fit", "Data and the prediction line of a 1-D model as it trains",
             lambda: main.action_show_insight("fit")),
            ("Insight: classifier", "Confusion matrix and validation images, mistakes first",
             lambda: main.action_show_insight("classes")),
        ]
        from tui_nn.tui.screens.lessons import lesson_commands

        commands += list(lesson_commands(self))
        for title, help_text, callback in commands:
            yield SystemCommand(title, help_text, callback)


def make_app(model: str | None = None, train_options: dict[str, Any] | None = None, *,
             dataset: Any = None, start: bool = False, resume: str | None = None,
             input_text: str | None = None, runs_roots: list[str] | None = None) -> TuiNNApp:
    """The app, with ``model`` selected and the training form filled from ``train_options``
    (the keys of ``tui-nn train``'s options; None values mean 'the model's default').

    ``start``: begin training as soon as the model is loaded (`tui-nn train MODEL`).
    ``resume``: continue the run in this directory as soon as torch is loaded.
    ``dataset`` (an in-memory tui_nn.data.base.Dataset) replaces the dataset of every run:
    tests and benchmarks use it to train on data they made.
    ``input_text``: the inspector's input shape for ``model`` (`tui-nn tui --input`).
    ``runs_roots``: the folders the runs screen (`r`) lists, local or HOST:PATH
    (`tui-nn tui --runs`)."""
    return TuiNNApp(model=model, train_options=train_options, dataset=dataset, start=start,
                    resume=resume, input_text=input_text, runs_roots=runs_roots)
