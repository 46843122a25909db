"""Regenerate screenshots/*.svg from the app itself (the README shows them).

    python scripts/screenshots.py [--out screenshots] [--quick]

- model-picker.svg     the zoo and the shape inspector on the basic CNN (why 320 = 20 × 4 × 4)
- shape-mismatch.svg   LeNet fed 28×28 digits: the diagnosis and the fix, in the app
- inspector-80x24.svg  LeNet's arithmetic in an 80×24 terminal, every number whole
  (``--only inspector`` makes these three; ``--only training`` the training ones)
- training.svg         a real CPU training run (cnn on a slice of the embedded digits set),
                       live curves and progress, captured mid-run
- training-80x24.svg   the same view in an 80×24 terminal
- quit-confirm.svg     quitting while training asks first
- lesson-activations.svg, lesson-landscape.svg, lesson-landscape-heat.svg (80×24),
  lesson-sequences.svg, lesson-autograd.svg, lesson-overfitting.svg,
  lesson-augmentation.svg: the lesson views (``--only lessons``; ``--only data-lessons``
  makes just the last two)
- watch.svg            `tui-nn watch` following a headless run in another process (real run)
- runs.svg             the runs screen comparing two real runs: overlaid curves, config diff

``--only watch-runs`` makes only watch.svg and runs.svg.
- insight-*.svg        the Insight tab (key 4): gradient flow of a deep sigmoid MLP with its
                       warning, sigmoid vs ReLU, the curve net's live fit, the confusion matrix
                       and validation digits of a CNN (``--only insight``)

Real runs write into a temporary directory. ``--quick`` replays a synthetic run instead of
training (seconds instead of a minute; the numbers are then made up and say 'CPU (demo)').
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the app drivers

from textual._doc import take_svg_screenshot  # noqa: E402

from tui_nn.tui.app import make_app  # noqa: E402
from demo import replay, select_model, settle, synthetic_run  # noqa: E402


def shot(app, path: Path, size: tuple[int, int], run_before, title: str) -> None:
    """Drive the app with run_before, then save the frame. While a run trains, the frame is
    captured inside run_before (Pilot waits for an idle process before its own capture, and a
    training process is never idle), then the run is stopped so the app can exit."""
    captured: dict[str, str] = {}

    async def drive(pilot):
        await run_before(pilot)
        main = pilot.app.main
        if main.bridge.running:
            await asyncio.sleep(0.5)  # let the last updates render (no pilot.pause: see above)
            captured["svg"] = pilot.app.export_screenshot(title=title)
            main.bridge.stop()

    svg = take_svg_screenshot(app=app, terminal_size=size, run_before=drive, title=title)
    path.write_text(captured.get("svg", svg), encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)


async def wait_for(pilot, predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)  # not pilot.pause: it waits for an idle process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--quick", action="store_true", help="replay a synthetic run")
    parser.add_argument("--n-train", type=int, default=30_000)
    parser.add_argument("--only", choices=("all", "lessons", "data-lessons", "insight",
                                           "watch-runs", "inspector", "training"),
                        default="all", help="make one group of screenshots")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.only == "watch-runs":
        watch_and_runs(out)
        return
    if args.only in ("all", "lessons"):
        lesson_shots(out)
    if args.only in ("all", "lessons", "data-lessons"):
        data_lesson_shots(out)
    if args.only in ("all", "insight"):
        insight_shots(out)
    if args.only in ("all", "inspector"):
        inspector_shots(out)
    if args.only in ("all", "training"):
        training_shots(out, args)
    if args.only == "all":
        watch_and_runs(out)


def inspector_shots(out: Path) -> None:
    async def picker(pilot):
        await settle(pilot)
        await select_model(pilot, "cnn")
        pilot.app.main.query_one("#zoo").focus()

    shot(make_app(), out / "model-picker.svg", (110, 32), picker, "tui-nn: model picker")

    async def mismatch(pilot):
        await settle(pilot)
        await select_model(pilot, "lenet", input_text="1x28x28")
        pilot.app.main.query_one("#zoo").focus()

    shot(make_app(), out / "shape-mismatch.svg", (110, 32), mismatch,
         "tui-nn: shape mismatch diagnosis")

    async def narrow(pilot):
        await settle(pilot)
        await select_model(pilot, "lenet")
        pilot.app.main.query_one("#zoo").focus()

    shot(make_app(), out / "inspector-80x24.svg", (80, 24), narrow,
         "tui-nn: the shape inspector at 80×24")


def training_shots(out: Path, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="tui-nn-shots-") as tmp:
        options = {"epochs": 3, "runs_root": tmp}

        def training_app():
            if args.quick:
                return make_app(model="cnn", train_options=options)
            from tui_nn.data.digits import load_digits

            data = load_digits(n_train=args.n_train, n_val=2000, seed=0)
            return make_app(model="cnn", train_options=options, dataset=data)

        async def training(pilot):
            await settle(pilot)
            main = pilot.app.main
            main.show_tab("train")
            if args.quick:
                await replay(pilot, synthetic_run(upto_step=420))
                return
            await pilot.press("s")

            def into_third_epoch() -> bool:  # two validation points on the curves, and more
                m = main.bridge.latest
                return m is not None and m.epoch == 2 and m.epoch_step >= 0.4 * m.steps_per_epoch

            await wait_for(pilot, into_third_epoch, 600, "the third epoch")
            main.run.sync_progress()  # show exactly what the run has done so far
            main.query_one("#curves").redraw()
            pilot.app.clear_notifications()

        shot(training_app(), out / "training.svg", (120, 36), training,
             "tui-nn: training with live curves")
        shot(training_app(), out / "training-80x24.svg", (80, 24), training,
             "tui-nn: 80×24")

        async def quit_confirm(pilot):
            await training(pilot)
            if args.quick:  # no training thread to confirm against: show the dialog anyway
                from tui_nn.tui.screens.confirm import ConfirmScreen

                pilot.app.push_screen(ConfirmScreen(
                    "A run is in progress.\nStop it, save a checkpoint and quit?",
                    confirm="Stop & quit (y)", cancel="Keep training (n)"))
            else:
                pilot.app.call_later(pilot.app.action_quit)
            await asyncio.sleep(0.8)

        shot(training_app(), out / "quit-confirm.svg", (100, 30), quit_confirm,
             "tui-nn: quit while training")


def headless(run_dir: Path, *args: str) -> "subprocess.Popen":
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tui_nn", "train", "diabetes", "--headless",
                             "--device", "cpu", "--run-dir", str(run_dir), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def watch_and_runs(out: Path) -> None:
    import os

    """watch.svg: a headless run in a subprocess, followed mid-run. runs.svg: three finished
    runs with different learning rates, two of them marked."""
    from tui_nn.tui.screens.runs import OverlayPlot, RunsScreen
    from tui_nn.tui.screens.watch import WatchApp

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="tui-nn-watch-") as tmp:
        root = Path(tmp) / "runs"
        run = root / "diabetes-headless"
        proc = headless(run, "--epochs", "400", "--batch-size", "32")
        try:
            async def watching(pilot):
                screen = pilot.app.watch_screen
                await wait_for(pilot, lambda: screen.epochs_seen >= 60
                               and screen.status == "running", 120, "sixty epochs")
                pane = screen.query_one("#system")
                await wait_for(pilot, lambda: pane.reading is not None
                               and pane.reading.process is not None, 10, "process stats")
                await asyncio.sleep(0.6)
                captured["svg"] = pilot.app.export_screenshot(title="tui-nn watch")

            captured: dict[str, str] = {}
            take_svg_screenshot(app=WatchApp(run), terminal_size=(110, 32),
                                run_before=watching, title="tui-nn watch")
            (out / "watch.svg").write_text(captured["svg"], encoding="utf-8")
            print("wrote watch.svg", flush=True)
        finally:
            proc.terminate()
            proc.wait()

        for lr in ("0.03", "0.1", "0.3"):
            headless(root / f"sweep-lr-{lr}", "--epochs", "80", "--batch-size", "32",
                     "--lr", lr).wait()
        os.chdir(tmp)  # the screen shows its root: "runs", not a temporary path

        from textual.app import App

        class RunsApp(App):
            CSS_PATH = ROOT / "tui_nn" / "tui" / "app.tcss"

            def on_mount(self):
                self.push_screen(RunsScreen("runs"))

        async def comparing(pilot):
            app = pilot.app
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                           and app.screen.loaded, 30, "the runs")
            names = [r.name for r in app.screen.runs]
            table = app.screen.query_one("#runs-table")
            for name in ("sweep-lr-0.03", "sweep-lr-0.3"):
                table.move_cursor(row=names.index(name))
                await pilot.press("space")
            plot = app.screen.query_one(OverlayPlot)
            await wait_for(pilot, lambda: len(plot.series) == 2, 10, "the curves")
            await pilot.pause(0.3)

        svg = take_svg_screenshot(app=RunsApp(), terminal_size=(110, 32), run_before=comparing,
                                  title="tui-nn: runs")
        os.chdir(cwd)
        (out / "runs.svg").write_text(svg, encoding="utf-8")
        print("wrote runs.svg", flush=True)


def lesson_shots(out: Path) -> None:
    """The lesson views, each with its real (tiny) computation done."""
    from tui_nn.tui.screens.activations import ActivationsScreen
    from tui_nn.tui.screens.landscape import LandscapeScreen
    from tui_nn.tui.screens.lessons import open_lesson
    from tui_nn.tui.screens.sequences import SequenceScreen

    async def until(pilot, predicate, what: str) -> None:
        deadline = time.monotonic() + 300
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await pilot.pause(0.05)

    async def activations(pilot):
        await settle(pilot)
        screen = ActivationsScreen()
        pilot.app.push_screen(screen)
        await until(pilot, lambda: len(screen.curves) == 7, "the curves")
        screen.mode = "both"
        await pilot.pause(0.3)

    shot(make_app(), out / "lesson-activations.svg", (110, 32), activations,
         "tui-nn: activation functions and their derivatives")

    def landscape(view: str, epoch: int):
        async def drive(pilot):
            await settle(pilot)
            screen = LandscapeScreen(autoplay=False, view=view)
            pilot.app.push_screen(screen)
            await pilot.pause(0.1)
            screen.t = epoch
            await pilot.pause(0.3)
        return drive

    shot(make_app(), out / "lesson-landscape.svg", (110, 32), landscape("curve", 12),
         "tui-nn: loss landscape, GD / SGD / mini-batch at epoch 12")
    shot(make_app(), out / "lesson-landscape-heat.svg", (80, 24), landscape("heat", 100),
         "tui-nn: the w×b heat map at 80×24")

    async def sequences(pilot):
        await settle(pilot)
        screen = SequenceScreen()
        pilot.app.push_screen(screen)
        await until(pilot, lambda: not screen.char_running and screen.char_rows
                    and screen.grads is not None, "the char RNN")
        await pilot.press("l")  # the real table: about 20-40 s on 2 CPU cores
        await until(pilot, lambda: screen.long_table is not None, "the long-range table")
        await pilot.pause(0.3)

    shot(make_app(), out / "lesson-sequences.svg", (110, 32), sequences,
         "tui-nn: char RNN output per epoch; RNN vs LSTM vs GRU")

    async def autograd(pilot):
        await settle(pilot)
        await select_model(pilot, "cnn")
        open_lesson(pilot.app, "autograd")
        await pilot.pause(0.1)
        screen = pilot.app.screen
        await until(pilot, lambda: screen.graph is not None, "the graph")
        await pilot.pause(0.3)

    shot(make_app(), out / "lesson-autograd.svg", (110, 32), autograd,
         "tui-nn: the autograd graph of the CNN's loss")


def data_lesson_shots(out: Path) -> None:
    """The overfitting view after its real training (256 digits, 30 epochs × 4 variants, about
    30-40 s on 2 CPU cores) and the augmentation view at 80×24."""
    from tui_nn.tui.screens.lessons import open_lesson

    async def overfitting(pilot):
        await settle(pilot)
        open_lesson(pilot.app, "overfitting")
        await pilot.pause(0.1)
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.done, 600, "the overfitting runs")
        await pilot.pause(0.3)

    shot(make_app(), out / "lesson-overfitting.svg", (110, 32), overfitting,
         "tui-nn: overfitting, train vs validation loss with and without remedies")

    async def augmentation(pilot):
        await settle(pilot)
        open_lesson(pilot.app, "augmentation")
        await pilot.pause(0.3)

    shot(make_app(), out / "lesson-augmentation.svg", (80, 24), augmentation,
         "tui-nn: one batch before and after --augment digits, at 80×24")


def insight_shots(out: Path) -> None:
    """The Insight tab's views. Their data are computed by tests/demo_insight.py from real
    tiny models (fixed seeds, one CPU thread: a deep sigmoid MLP, the curve net after 40 SGD
    steps, the basic CNN after 60 steps on 2,000 digits) and fed through the bridge as the
    training thread would; the vanishing comparison runs in the app itself."""
    from demo_insight import (fit_event, gradient_flow_events, predictions_event,
                                         show_insight)

    views = [
        ("insight-gradient-flow.svg", "flow", gradient_flow_events, "gradient flow", None),
        ("insight-vanishing.svg", "vanish", list, "vanishing gradients, sigmoid vs ReLU", None),
        ("insight-fit.svg", "fit", lambda: [fit_event()], "live fit", "curve"),
        ("insight-classifier.svg", "classes", lambda: [predictions_event()],
         "confusion matrix and validation images", "cnn"),
    ]
    for name, view, make_events, title, model in views:
        events = make_events()

        async def drive(pilot, view=view, events=events):
            await settle(pilot)
            await show_insight(pilot, view, events)
            if view == "vanish":
                pane = pilot.app.main.query_one("#vanish-view")
                await wait_for(pilot, lambda: pane.comparison is not None, 60, "comparison")
                await asyncio.sleep(0.3)
            pilot.app.clear_notifications()

        shot(make_app(model=model), out / name, (100, 30), drive, f"tui-nn: {title}")


if __name__ == "__main__":
    main()
