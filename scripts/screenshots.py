"""Regenerate screenshots/*.svg from the app itself (the README shows them).

    python scripts/screenshots.py [--out screenshots] [--quick]

- model-picker.svg     the zoo and the shape inspector on the basic CNN (why 320 = 20 × 4 × 4)
- shape-mismatch.svg   LeNet fed 28×28 digits: the diagnosis and the fix, in the app
- training.svg         a real CPU training run (cnn on a slice of the embedded digits set),
                       live curves and progress, captured mid-run
- training-80x24.svg   the same view in an 80×24 terminal
- quit-confirm.svg     quitting while training asks first
- insight-*.svg        the Insight tab (key 4): gradient flow of a deep sigmoid MLP with its
                       warning, sigmoid vs ReLU, the curve net's live fit, the confusion matrix
                       and validation digits of a CNN (insight_shots; ``--only insight``)

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

from textual._doc import take_svg_screenshot  # noqa: E402

from tui_nn.tui.app import make_app  # noqa: E402
from tui_nn.tui.demo import replay, select_model, settle, synthetic_run  # noqa: E402


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
    parser.add_argument("--only", choices=("all", "insight"), default="all",
                        help="insight: only the Insight tab's screenshots")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    insight_shots(out)
    if args.only == "insight":
        return

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
            main._frame()  # show exactly what the run has done so far
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


def insight_shots(out: Path) -> None:
    """The Insight tab's views. Their data are computed by tui_nn.tui.demo_insight from real
    tiny models (fixed seeds, one CPU thread: a deep sigmoid MLP, the curve net after 40 SGD
    steps, the basic CNN after 60 steps on 2,000 digits) and fed through the bridge as the
    training thread would; the vanishing comparison runs in the app itself."""
    from tui_nn.tui.demo_insight import (fit_event, gradient_flow_events, predictions_event,
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
