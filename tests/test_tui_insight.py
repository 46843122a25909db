"""The Insight tab (key 4): gradient flow, vanishing gradients, live fit and classifier views,
driven by Pilot with real tiny CPU models, plus snapshot tests of each view."""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

from tui_nn.data.base import Dataset
from tui_nn.tui.app import make_app
from demo import SNAPSHOT_SIZE, settle
from demo_insight import (fit_event, gradient_flow_events, predictions_event,
                                     show_insight)

from helpers import blobs_images
from pilot_helpers import SIZE, wait_for


async def ready(pilot):
    main = pilot.app.main
    await wait_for(pilot, lambda: main.run_state != "loading" and main.model_source is not None,
                   timeout=60, what="catalog")


def log_text(app) -> str:
    return "\n".join(app.main.query_one("#event-log").lines_written)


def text_of(app, selector: str) -> str:
    return app.main.query_one(selector).text.plain


def test_drawing_thresholds_match_the_monitor():
    from tui_nn.insight import gradflow
    from tui_nn.tui.widgets import insight

    assert (insight.VANISH_ABS, insight.VANISH_REL, insight.EXPLODE_ABS) == (
        gradflow.VANISH_ABS, gradflow.VANISH_REL, gradflow.EXPLODE_ABS)
    assert insight.layer_state(0.0, 1.0) == "dead"
    assert insight.layer_state(1e-5, 1.0) == "vanishing"
    assert insight.layer_state(float("nan"), 1.0) == "exploding"
    assert insight.log_range([1e-5, 0.5]) == (-5.0, 0.0)
    assert insight.bar(1.0, -4, 0, 10) == "█" * 10 and insight.bar(1e-4, -4, 0, 10) == ""


# ---- live views, real runs -------------------------------------------------------------------
async def test_gradient_flow_of_a_deep_sigmoid_mlp_shows_vanishing_and_warns_in_the_log(
        tmp_path):
    source = tmp_path / "deep.py"
    source.write_text("from tui_nn.insight.gradflow import deep_mlp\n"
                      "def make():\n"
                      "    return deep_mlp('sigmoid', depth=8, width=32)\n")
    from tui_nn.insight.gradflow import synthetic_batch

    x, y = synthetic_batch(256, 32, seed=0)  # (256, 32), (256, 1)
    data = Dataset("sine", "regression", x, y, x[:64], y[:64], (32,))
    app = make_app(model=f"{source}:make", dataset=data, start=True,
                   train_options={"epochs": 3, "batch_size": 64, "lr": 0.01, "optimizer": "sgd",
                                  "report_interval_s": 0.0, "runs_root": str(tmp_path)})
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state == "finished", timeout=60, what="finish")
        await pilot.press("4")
        assert main.query_one("#tabs").active == "insight"
        view = main.query_one("#flow-view")
        await wait_for(pilot, lambda: view.event is not None, what="gradient flow")
        snap = view.event.snapshot
        assert view.event.step == 12  # 256 / 64 × 3: the last step's gradients
        assert snap.names == [f"fc{i}" for i in range(1, 9)]
        assert snap.grad_norms[0] / snap.grad_norms[-1] < 1e-2  # orders of magnitude
        shown = text_of(app, "#flow-bars")
        rows = {line.split()[0]: line for line in shown.splitlines()[1:-1]}
        assert set(rows) == {f"fc{i}" for i in range(1, 9)}
        fc1 = float(rows["fc1"].split()[-2])  # the norm column as displayed
        fc8 = float(rows["fc8"].split()[-2])
        assert fc1 / fc8 < 1e-2
        assert rows["fc1"].count("█") < rows["fc8"].count("█")  # log-scale bars
        # The monitor's warning reached the event log, once per episode.
        log = log_text(app)
        assert re.search(r"gradients: fc1: gradient norm \S+ \(\S+ × the largest layer's\) "
                         r"for \d+ observations \(vanishing\)", log)
        assert log.count("gradients: fc1:") == 1
        assert "vanishing" in str(main.query_one("#flow-warnings").render())


async def test_gradient_flow_updates_while_a_cnn_trains(tmp_path):
    data = dataclasses.replace(blobs_images(128, 32), name="tiny", mean=None, std=None)
    app = make_app(model="cnn", dataset=data,
                   train_options={"epochs": 2, "batch_size": 32, "lr": 0.05,
                                  "runs_root": str(tmp_path)})
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        main = app.main
        await pilot.press("4")
        await pilot.press("s")  # the screen's keys work from the Insight tab
        await wait_for(pilot, lambda: main.run_state == "finished", timeout=60, what="finish")
        await pilot.pause(0.2)
        view = main.query_one("#flow-view")
        assert view.event.snapshot.names == ["conv1", "conv2", "fc"]
        assert all(g > 0 for g in view.event.snapshot.grad_norms)
        assert main.bridge.insight.gradient_version >= 2  # at least one per epoch's last step
        shown = text_of(app, "#flow-bars")
        assert "conv1 Conv2d" in shown and "fc    Linear" in shown
        assert f"step {view.event.step}" in str(main.query_one("#flow-head").render())
        # The classifier view got the last epoch's confusion matrix.
        main.action_show_insight("classes")
        await pilot.pause(0.2)
        classes = main.query_one("#classes-view")
        cm = classes.event.confusion
        assert classes.event.epoch == 1
        assert cm.total == 32  # sums to the validation size
        assert cm.accuracy == pytest.approx(main.bridge.latest_epoch.value)
        shown = text_of(app, "#confusion")
        assert f"({cm.correct}/32)" in shown
        grid = text_of(app, "#samples")
        captions = re.findall(r"[✗✓]\S+", grid)
        assert len(captions) == 16
        marks = [c[0] for c in captions]
        assert marks == sorted(marks, key=lambda m: m == "✓")  # misclassified first
        # A new run (the screen resets the tab when it starts) shows empty views, not the
        # last run's pictures.
        main.query_one("#insight-pane").reset()
        await pilot.pause(0.1)
        assert classes.event is None and "No predictions yet" in text_of(app, "#confusion")
        assert main.query_one("#flow-view").event is None
        assert "No gradients yet" in text_of(app, "#flow-bars")


async def test_live_fit_line_changes_as_the_curve_net_trains(tmp_path):
    # 200 one-step epochs: about 4 s in the app, report times 0.2 s apart.
    epochs = 200
    app = make_app(model="curve", train_options={"epochs": epochs, "runs_root": str(tmp_path)})
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        main = app.main
        main.action_show_insight("fit")
        assert main.query_one("#insight-tabs").active == "fit"
        plot = main.query_one("#fit-plot")
        await pilot.press("s")
        seen = {}  # step -> the FitUpdate the plot was showing, sampled as the run goes
        deadline = time.monotonic() + 90
        while main.run_state != "finished":
            assert time.monotonic() < deadline, "timed out waiting for the run"
            if plot.event is not None:
                seen[plot.event.step] = plot.event
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        last = plot.event
        assert last.step == epochs  # the final line is always shown
        first = seen[min(seen)]
        assert first.step < epochs, "the line was only drawn at the end"
        assert last.snapshot.line_y != first.snapshot.line_y  # the line moved
        assert last.snapshot.loss < first.snapshot.loss
        assert len(last.snapshot.x) == 100  # the data scatter
        assert plot.redraws >= 2
        assert "MSE" in plot.plt.build()


async def test_vanishing_comparison_view_by_keys():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        main = app.main
        await pilot.press("4")
        await pilot.press("right")  # the view tabs have focus: → goes to Vanishing
        assert main.query_one("#insight-tabs").active == "vanish"
        view = main.query_one("#vanish-view")
        await wait_for(pilot, lambda: view.comparison is not None, what="the comparison")
        await pilot.pause(0.1)
        comp = view.comparison
        assert comp.first_over_last("sigmoid") < 1e-2
        assert comp.first_over_last("relu") > 0.1
        sigmoid = text_of(app, "#vanish-sigmoid")
        relu = text_of(app, "#vanish-relu")
        shown_sig = float(re.search(r"fc1/fc8 = (\S+)", sigmoid).group(1))
        shown_relu = float(re.search(r"fc1/fc8 = (\S+)", relu).group(1))
        assert shown_sig < 1e-2 < 0.1 < shown_relu
        bars = {line.split()[0]: line.count("█") for line in sigmoid.splitlines()[1:-1]}
        assert bars["fc1"] < bars["fc8"] / 4


async def test_insight_views_are_in_the_command_palette():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        commands = {c.title: c.callback for c in app.get_system_commands(app.screen)}
        for title in ("Insight: gradient flow", "Insight: vanishing gradients",
                      "Insight: live fit", "Insight: classifier"):
            assert title in commands
        commands["Insight: classifier"]()
        await pilot.pause(0.1)
        assert app.main.query_one("#tabs").active == "insight"
        assert app.main.query_one("#insight-tabs").active == "classes"
        assert "No predictions yet" in text_of(app, "#confusion")


# ---- snapshots ---------------------------------------------------------------------------------
def _flow_events():
    return gradient_flow_events()


def test_snapshot_gradient_flow(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await show_insight(pilot, "flow", _flow_events())

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_snapshot_gradient_flow_80x24(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await show_insight(pilot, "flow", _flow_events())

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_snapshot_vanishing_comparison(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await show_insight(pilot, "vanish", [])
        view = pilot.app.main.query_one("#vanish-view")
        await wait_for(pilot, lambda: view.comparison is not None, what="the comparison")
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_snapshot_live_fit(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await show_insight(pilot, "fit", [fit_event()])

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_snapshot_classifier(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await show_insight(pilot, "classes", [predictions_event()])

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)
