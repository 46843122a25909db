"""The Textual app, driven by Pilot: model choice -> inspector, shape diagnosis, real (tiny, CPU)
training runs with live curves and progress, pause/resume/stop, quitting mid-run, errors as
notifications. Plus the plain-Python pieces under it (history downsampling, EMA, the bridge's
throttle)."""

from __future__ import annotations

import dataclasses
import gc
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tui_nn.data.base import Dataset
from tui_nn.tui.app import make_app
from tui_nn.tui.history import BucketSeries, Point, RunHistory, ema

from helpers import blobs_images, line_dataset
from pilot_helpers import SIZE, wait_for, wait_for_exit


# ---- helpers ------------------------------------------------------------------------------------
def tiny_images(n_train: int = 128, n_val: int = 32, seed: int = 0) -> Dataset:
    """The engine tests' ten-class squares, under the name the app shows in these tests."""
    return dataclasses.replace(blobs_images(n_train, n_val, seed), name="tiny", mean=None,
                               std=None)


def line_data() -> Dataset:
    return line_dataset()


async def ready(pilot, inspected: bool = True):
    """Wait for the catalog (and the first inspection) to arrive."""
    app = pilot.app
    await wait_for(pilot, lambda: app.main.run_state != "loading"
                   and app.main.model_source is not None, what="catalog")
    if inspected:
        inspector = app.main.query_one("#inspector")
        await wait_for(pilot, lambda: inspector.inspection is not None or inspector.error,
                       what="first inspection")


def log_text(app) -> str:
    return "\n".join(app.main.query_one("#event-log").lines_written)


def notifications(app) -> list:
    return list(app._notifications)


# ---- plain-Python pieces --------------------------------------------------------------------
def test_bucket_series_stays_bounded_and_keeps_means_and_extremes():
    series = BucketSeries(capacity=64)
    n = 10_000
    for i in range(n):
        series.append(i, float(i % 100))
    assert len(series) <= 64
    points = series.points()
    assert sum(p.count for p in points) == n
    total = sum(p.y * p.count for p in points)
    assert total == pytest.approx(sum(float(i % 100) for i in range(n)))
    assert min(p.lo for p in points) == 0 and max(p.hi for p in points) == 99
    assert [p.x for p in points] == sorted(p.x for p in points)
    assert len(series.points(max_points=20)) <= 20


def test_history_snapshot_cost_does_not_grow_with_run_length():
    history = RunHistory(capacity=256)
    history.add_steps(1, [1.0] * 1000)
    small = history.snapshot(max_points=200)
    history.add_steps(1001, [1.0] * 200_000)
    big = history.snapshot(max_points=200)
    assert len(small.train) <= 200 and len(big.train) <= 200
    assert big.steps == 201_000 and len(history.losses) == 201_000  # raw history is kept


def test_ema_is_tensorboards_debiased_smoothing():
    ys = [3.0, 1.0, 2.0, 5.0, 4.0]
    points = [Point(i, y, y, y, 1) for i, y in enumerate(ys)]
    w = 0.6
    last, expected = 0.0, []
    for i, y in enumerate(ys, 1):  # TensorBoard's smoothing with debiasing
        last = last * w + (1 - w) * y
        expected.append(last / (1 - w ** i))
    assert ema(points, w) == pytest.approx(expected)
    assert ema(points, 0.0) == ys
    assert ema(points, 0.9)[0] == pytest.approx(3.0)  # debiased: no pull towards 0


def test_ema_on_buckets_matches_raw_ema_for_constant_runs():
    raw = [Point(i, 2.0, 2.0, 2.0, 1) for i in range(8)]
    merged = [Point(1.5, 2.0, 2.0, 2.0, 4), Point(5.5, 2.0, 2.0, 2.0, 4)]
    assert ema(merged, 0.8)[-1] == pytest.approx(ema(raw, 0.8)[-1])


def test_bridge_throttles_progress_messages():
    from tui_nn.engine import events as ev
    from tui_nn.tui.bridge import TrainingBridge
    from tui_nn.tui.messages import TrainingProgress

    class Target:
        def __init__(self):
            self.messages = []

        def post_message(self, message):
            self.messages.append(message)

    target = Target()
    bridge = TrainingBridge(target, max_rate=10.0)
    for step in range(1, 201):  # 200 chunks arriving as fast as possible
        bridge._on_event(ev.StepMetrics(epoch=0, step=step, first_step=step, losses=(1.0,),
                                        lr=0.1, samples_per_s=1.0, eta_s=None, epoch_step=step,
                                        steps_per_epoch=1000, total_steps=1000))
    progress = [m for m in target.messages if isinstance(m, TrainingProgress)]
    assert 1 <= len(progress) <= 3  # not 200
    assert bridge.history.train.count == 200  # but every step's loss is stored
    assert bridge.latest.step == 200
    assert progress[0].can_replace(TrainingProgress(bridge.latest, None))


def test_form_choices_match_the_engine():
    from tui_nn.engine.config import OPTIMIZERS, SCHEDULES
    from tui_nn.tui.widgets import train_form

    assert train_form.OPTIMIZERS == OPTIMIZERS and train_form.SCHEDULES == SCHEDULES


def test_importing_the_app_does_not_import_torch():
    # The engine package itself is torch-free (its config, events and run directory are what
    # the app reads before training); only the Trainer's modules import torch.
    code = ("import sys; import tui_nn.tui.app; "
            "print('torch' in sys.modules, 'tui_nn.engine.trainer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---- the app --------------------------------------------------------------------------------
async def test_choosing_a_model_updates_the_inspector():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        inspector = app.main.query_one("#inspector")
        assert app.main.model_source == "linear"
        assert inspector.inspection.model_name == "linear"
        # Down to 'cnn' in the zoo list: the inspector follows the cursor.
        names = list(app.main.entries)
        for _ in range(names.index("cnn")):
            await pilot.press("down")
        await wait_for(pilot, lambda: inspector.inspection is not None
                       and inspector.inspection.model_name == "cnn", what="cnn inspection")
        assert app.main.model_source == "cnn"
        assert inspector.input_text == "1x28x28"
        table = inspector.query_one("#layers")
        cells = [str(table.get_row_at(i)[0]).strip() for i in range(table.row_count)]
        assert "conv1" in cells and "fc" in cells
        assert "Linear(320) ← 20 × 4 × 4 = 320 ✓" in str(
            inspector.query_one("#diagnosis").render())
        assert "✓" in str(inspector.query_one("#verdict").render())
        # Inception's branches are one level down: '+' shows them, '-' hides them again.
        for _ in range(names.index("inception") - names.index("cnn")):
            await pilot.press("down")
        await wait_for(pilot, lambda: inspector.inspection is not None
                       and inspector.inspection.model_name == "inception", what="inception")
        shallow = table.row_count
        await pilot.press("plus")
        assert inspector.depth == 2 and table.row_count > shallow
        assert "depth 2/2" in str(inspector.query_one("#depth-label").render())
        await pilot.press("minus")
        assert inspector.depth == 1 and table.row_count == shallow
        await pilot.press("enter")  # enter on a model: go and train it
        assert app.main.query_one("#tabs").active == "train"
        assert app.main.query_one("#dataset").value == "digits"  # the model's default dataset


async def test_wrong_input_shape_shows_the_diagnosis_and_the_fix():
    app = make_app(model="cnn")
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        inspector = app.main.query_one("#inspector")
        await wait_for(pilot, lambda: inspector.inspection.model_name == "cnn")
        await pilot.press("i")  # edit the input shape in place
        field = app.main.query_one("#input-shape")
        assert app.focused is field
        field.value = ""
        await pilot.press(*"1x32x32")
        await wait_for(pilot, lambda: inspector.inspection is not None
                       and inspector.inspection.input_shapes == [(1, 1, 32, 32)],
                       what="the new inspection")
        diagnosis = str(inspector.query_one("#diagnosis").render())
        assert "Linear expects 320 features but gets 20 × 5 × 5 = 500" in diagnosis
        assert "fix:" in diagnosis and "nn.Linear(500, 10)" in diagnosis
        assert "28–31" in diagnosis  # the sizes that would work
        assert "mismatch" in str(inspector.query_one("#verdict").render())
        assert inspector.has_class("-problem")
        # A malformed shape is explained too, and fixing it clears the problem.
        await pilot.press("backspace", "backspace", "x")
        await wait_for(pilot, lambda: inspector.error is not None, what="parse error")
        assert "1x28x28" in str(inspector.query_one("#diagnosis").render())
        field.value = "1x28x28"
        await wait_for(pilot, lambda: inspector.error is None and inspector.inspection.ok,
                       what="fixed shape")
        assert not inspector.has_class("-problem")
        assert app.main.run_state == "idle"  # nothing crashed


async def test_training_run_updates_curves_and_progress_and_finishes(tmp_path):
    app = make_app(model="cnn", train_options={"epochs": 2, "batch_size": 32, "lr": 0.05,
                                               "runs_root": str(tmp_path)},
                   dataset=tiny_images())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, inspected=False)
        main = app.main
        assert main.query_one("#tabs").active == "train"  # `tui-nn train cnn …` lands here
        assert main.query_one("#epochs").value == "2"
        gc.unfreeze()
        await pilot.press("s")
        await wait_for(pilot, lambda: main.run_state == "finished", timeout=40, what="finish")
        await pilot.pause(0.3)
        assert gc.get_freeze_count() > 0  # the run's start froze the long-lived objects
        status = main.query_one("#status")
        assert status.started.total_steps == 8  # 128 / 32 × 2
        assert status.latest.step == 8
        assert status.epoch.epoch == 1 and 0 <= status.epoch.value <= 1
        assert main.query_one("#epoch-bar").percentage == 1.0
        assert main.query_one("#step-bar").percentage == 1.0
        assert list(main.history.steps) == list(range(1, 9))
        assert len(main.history.epochs) == 2
        loss_plot = main.query_one("#loss-plot")
        metric_plot = main.query_one("#metric-plot")
        assert loss_plot.redraws > 0 and metric_plot.redraws > 0
        assert loss_plot.x_max == 8
        assert "run finished: 2 epochs, 8 steps" in log_text(app)
        # The first line says how the model fits the data (head and loss).
        assert "; 10 classes: head Linear(320, 10), CrossEntropyLoss" in log_text(app)
        run_dirs = list(tmp_path.iterdir())
        assert len(run_dirs) == 1 and (run_dirs[0] / "last.pt").exists()
        assert any("finished" in n.title for n in notifications(app))
        # The form is usable again and a second run can start.
        assert not main.query_one("#form").locked


async def test_pause_resume_and_stop(tmp_path):
    app = make_app(model="linear", train_options={"epochs": 1_000_000, "runs_root": str(tmp_path)},
                   dataset=line_data())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, inspected=False)
        main = app.main
        await pilot.press("s")
        await wait_for(pilot, lambda: main.run_state == "running" and main.bridge.latest,
                       what="running")
        await pilot.press("p")
        await wait_for(pilot, lambda: main.run_state == "paused", what="paused")
        assert str(main.query_one("#pause").label) == "Resume"
        await pilot.pause(0.2)
        step = main.bridge.trainer.state.step
        await pilot.pause(0.4)
        assert main.bridge.trainer.state.step == step  # really paused
        await pilot.press("p")
        await wait_for(pilot, lambda: main.run_state == "running", what="resumed")
        await wait_for(pilot, lambda: main.bridge.trainer.state.step > step + 3, what="progress")
        await pilot.press("x")
        await wait_for(pilot, lambda: main.run_state == "stopped", what="stopped")
        assert main.bridge.result.status == "stopped"
        assert main.bridge.last_checkpoint.endswith("last.pt")
        assert Path(main.bridge.last_checkpoint).exists()
        assert "run stopped: " in log_text(app)


async def test_quit_during_training_confirms_and_leaves_a_loadable_checkpoint(tmp_path):
    from tui_nn.engine.checkpoint import load_checkpoint
    from tui_nn.tui.screens.confirm import ConfirmScreen

    app = make_app(model="linear", train_options={"epochs": 1_000_000, "runs_root": str(tmp_path)},
                   dataset=line_data())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, inspected=False)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.main.run_state == "running" and app.main.bridge.latest,
                       what="running")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("n")  # keep training
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.main.bridge.running
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await wait_for_exit(app)
    assert not app.main.bridge.running
    (run_dir,) = tmp_path.iterdir()
    ckpt = load_checkpoint(run_dir / "last.pt")
    assert ckpt["step"] > 0 and "weight" in str(list(ckpt["model"]))
    assert app.main.bridge.result.status == "stopped"


async def test_nan_loss_pauses_the_run_on_good_weights_and_the_app_keeps_running(tmp_path):
    """In the app a NaN rolls back to the last checkpoint and pauses (headless stops): lower the
    lr with l, resume with p; here lr=10 still diverges after one halving, so it pauses again
    (keeping the halved lr), and x stops with finite weights."""
    from tui_nn.engine.checkpoint import load_checkpoint

    app = make_app(model="linear", train_options={"epochs": 100_000, "lr": 10.0,
                                                  "runs_root": str(tmp_path)},
                   dataset=line_data())
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await ready(pilot, inspected=False)
        await pilot.press("s")
        await wait_for(pilot, lambda: main.run_state == "paused", what="NaN pause")
        await wait_for(pilot, lambda: "rolled back to the checkpoint" in log_text(app)
                       and any(n.severity == "error" for n in notifications(app)),
                       what="the NaN's notification and log line")
        errors = [n for n in notifications(app) if n.severity == "error"]
        assert errors and errors[-1].title == "loss is NaN: run paused"
        assert "l halves the lr" in errors[-1].message
        assert "rolled back to the checkpoint of step 0" in log_text(app)
        assert main.bridge.running  # alive, not failed
        await pilot.press("l", "p")
        await wait_for(pilot, lambda: "lr × 0.5 → 5" in log_text(app), what="lr halved")
        await wait_for(pilot, lambda: log_text(app).count("rolled back to the checkpoint") == 2,
                       what="second NaN pause")
        await pilot.press("x")
        await wait_for(pilot, lambda: main.run_state == "stopped", what="stopped")
        (run_dir,) = tmp_path.iterdir()
        ckpt = load_checkpoint(run_dir / "last.pt")
        assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
        assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(5.0)
        # Still alive: switch tabs; the form is editable again.
        await pilot.press("1")
        assert main.query_one("#tabs").active == "model"
        assert not main.query_one("#form").locked


def stopped_run(tmp_path: Path, epochs: int = 4) -> Path:
    """A linear run stopped (with a checkpoint) after its first epoch, as a crash would."""
    from tui_nn.engine import TrainConfig, Trainer
    from tui_nn.engine import events as ev

    run_dir = tmp_path / "runs" / "stopped-linear"

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.EpochMetrics):
            trainer.stop()

    trainer = Trainer(TrainConfig("linear", epochs=epochs, run_dir=str(run_dir),
                                  tensorboard=False), on_event, dataset=line_data())
    assert trainer.run().status == "stopped"
    return run_dir


async def test_resume_action_continues_a_stopped_run_to_the_end(tmp_path):
    from tui_nn.engine.checkpoint import load_checkpoint
    from tui_nn.tui.screens.resume import ResumeScreen

    run_dir = stopped_run(tmp_path)
    app = make_app(train_options={"runs_root": str(tmp_path / "runs")}, dataset=line_data())
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await ready(pilot, inspected=False)
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ResumeScreen), what="resume list")
        options = app.screen.query_one("#resume-runs")
        await wait_for(pilot, lambda: options.option_count > 0, what="runs listed")
        assert "stopped-linear" in str(options.get_option_at_index(0).prompt)
        await pilot.press("enter")
        await wait_for(pilot, lambda: main.run_state == "finished", what="finished")
        assert f"resuming {run_dir}" in log_text(app)
        assert main.bridge.started.start_epoch >= 1  # continued, not restarted
        assert main.bridge.result.epochs_done == 4
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 4


async def test_runs_screen_continues_the_highlighted_stopped_run(tmp_path):
    from tui_nn.tui.screens.runs import RunsScreen

    run_dir = stopped_run(tmp_path)
    app = make_app(train_options={"runs_root": str(tmp_path / "runs")}, dataset=line_data())
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await ready(pilot, inspected=False)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.runs,
                       what="runs screen")
        await pilot.press("c")
        await wait_for(pilot, lambda: main.run_state == "finished", what="finished")
        assert app.screen is main
        assert f"resuming {run_dir}" in log_text(app)
        assert main.bridge.result.epochs_done == 4


async def test_resume_of_a_missing_run_is_a_notification(tmp_path):
    app = make_app(resume=str(tmp_path / "nope"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: any(n.title == "cannot resume"
                                          for n in notifications(app)), what="notification")
        assert app.main.run_state == "idle" and app.is_running


async def test_train_command_starts_at_once(tmp_path):
    """`tui-nn train MODEL` on a terminal: make_app(start=True) trains without a key press."""
    app = make_app(model="linear", train_options={"epochs": 3, "runs_root": str(tmp_path)},
                   dataset=line_data(), start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.main.run_state == "finished", what="finished")
        assert app.main.query_one("#tabs").active == "train"


async def test_missing_data_offline_is_a_notification(tmp_path):
    app = make_app(model="mlp", train_options={"dataset": "mnist", "data_dir": str(tmp_path),
                                               "download": False, "runs_root": str(tmp_path)})
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, inspected=False)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.main.run_state == "failed", what="failure")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in notifications(app)),
                       what="the failure's notification")
        errors = [n for n in notifications(app) if n.severity == "error"]
        assert errors and errors[-1].title == "data"
        assert app.is_running


async def test_form_validation_blocks_a_bad_run():
    app = make_app(model="cnn", train_options={"epochs": 1})
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, inspected=False)
        form = app.main.query_one("#form")
        epochs = app.main.query_one("#epochs")
        epochs.value = "0"
        await pilot.pause(0.1)
        assert epochs.has_class("-invalid") and form.has_class("-has-errors")
        assert "epochs: a whole number ≥ 1" in str(form.query_one("#form-errors").render())
        lr = app.main.query_one("#lr")
        lr.value = "-1"
        await pilot.pause(0.1)
        assert lr.has_class("-invalid")
        await pilot.press("escape", "s")
        assert app.main.run_state == "idle"  # refused to start
        assert any(n.title == "cannot start" for n in notifications(app))
        epochs.value = "2"
        lr.value = "3e-4"
        await pilot.pause(0.1)
        assert not form.has_class("-has-errors")


async def test_open_a_model_from_a_file(tmp_path):
    source = tmp_path / "net.py"
    source.write_text(
        "import torch.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n"
        "        self.fc = nn.Linear(8 * 30 * 30, 2)\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.conv(x).flatten(1))\n")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("o")
        assert app.focused.id == "source"
        app.focused.value = f"{source}:Net"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.main.model_source == f"{source}:Net", what="loaded")
        inspector = app.main.query_one("#inspector")
        inspector.input_text = "3x32x32"
        await wait_for(pilot, lambda: inspector.inspection is not None
                       and inspector.inspection.input_shapes == [(1, 3, 32, 32)])
        assert inspector.inspection.ok
        # A broken source is a notification, not a crash.
        app.main.query_one("#source").value = str(tmp_path / "missing.py:Net")
        app.main.query_one("#source").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.severity == "error" for n in notifications(app)))
        assert app.is_running


async def test_small_terminal_and_resizes_keep_working():
    app = make_app(model="cnn")
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        screen = app.main
        assert screen.has_class("-narrow") and screen.has_class("-short")
        assert screen.query_one("#layers").region.height >= 4  # the table is visible at 80×24
        await pilot.resize_terminal(180, 50)
        await pilot.pause(0.2)
        assert screen.has_class("-very-wide") and screen.has_class("-tall")
        await pilot.press("2")
        await pilot.pause(0.1)
        assert screen.query_one("#mini-log").display  # the tall layout shows the log
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert screen.has_class("-narrow")
        plot = screen.query_one("#loss-plot")
        assert plot.region.width > 20 and plot.region.height > 5


async def test_command_palette_lists_the_actions():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, inspected=False)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Start training", "Pause / resume training", "Stop training",
                      "Save checkpoint now", "Edit input shape"):
            assert title in titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        from textual.command import CommandPalette
        assert isinstance(app.screen, CommandPalette)


def test_step_ticks_are_round_numbers():
    from tui_nn.tui.widgets.curves import step_ticks

    assert step_ticks(0, 450, 60) == ([0, 100, 200, 300, 400], ["0", "100", "200", "300", "400"])
    ticks, labels = step_ticks(0, 250_000, 90)
    assert labels[-1] == "250k" and len(ticks) <= 8


def test_epoch_floods_are_throttled_too():
    """A one-step-per-epoch model (the zoo's `linear`) emits thousands of epochs a second."""
    from tui_nn.engine import events as ev
    from tui_nn.tui.bridge import TrainingBridge

    class Target:
        messages: list = []

        def post_message(self, message):
            self.messages.append(message)

    bridge = TrainingBridge(Target())
    for epoch in range(500):
        bridge._on_event(ev.StepMetrics(epoch=epoch, step=epoch + 1, first_step=epoch + 1,
                                        losses=(1.0,), lr=0.1, samples_per_s=1.0, eta_s=None,
                                        epoch_step=1, steps_per_epoch=1, total_steps=500))
        bridge._on_event(ev.EpochMetrics(epoch=epoch, step=epoch + 1, train_loss=1.0,
                                         val_loss=1.0, metric="mse", value=1.0, best_value=1.0,
                                         is_best=False, elapsed_s=0.0, epoch_time_s=0.0,
                                         samples_per_s=1.0))
    assert len(Target.messages) <= 3
    assert len(bridge.history.epochs) == 500 and bridge.latest_epoch.epoch == 499


async def test_sigterm_stops_the_run_with_a_checkpoint_and_exits(tmp_path):
    from tui_nn.engine.checkpoint import load_checkpoint

    app = make_app(model="linear", train_options={"epochs": 1_000_000, "runs_root": str(tmp_path)},
                   dataset=line_data())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, inspected=False)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.main.bridge.latest is not None, what="running")
        app._on_signal(signal.SIGTERM)  # what the loop's SIGTERM handler calls
        await wait_for_exit(app)
    (run_dir,) = tmp_path.iterdir()
    assert load_checkpoint(run_dir / "last.pt")["step"] > 0


async def test_sighup_waits_for_the_checkpoint_then_leaves(tmp_path, monkeypatch):
    from tui_nn.engine.checkpoint import load_checkpoint
    from tui_nn.tui import app as app_module

    exits = []

    class FakeOs:
        @staticmethod
        def _exit(code):
            exits.append(code)

    monkeypatch.setattr(app_module, "os", FakeOs)
    app = make_app(model="linear", train_options={"epochs": 1_000_000, "runs_root": str(tmp_path)},
                   dataset=line_data())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, inspected=False)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.main.bridge.latest is not None, what="running")
        app._on_sighup(1, None)  # blocks until the training thread has returned
        assert exits == [129]
        assert app.main.bridge.done.is_set()
        (run_dir,) = tmp_path.iterdir()
        assert load_checkpoint(run_dir / "last.pt")["step"] > 0


def test_diverging_losses_get_short_axis_labels():
    from tui_nn.tui.widgets.curves import compact_y_ticks

    assert compact_y_ticks(0.1, 3.0) is None  # plotext's own labels are fine
    ticks, labels = compact_y_ticks(14.8, 8.02e37)
    assert labels[0] == "14.8" and labels[-1] == "8.02e+37"
    assert max(len(label) for label in labels) <= 9
    assert compact_y_ticks(float("nan"), 1.0) is None


async def test_a_run_started_in_the_app_is_steerable_from_another_terminal(tmp_path):
    """The app's run serves the control channel too: `tui-nn control`/`watch` elsewhere pause
    it, and the app shows the pause."""
    from tui_nn.engine.channel import SOCKET_FILE, send

    app = make_app(model="linear", train_options={"epochs": 1_000_000, "runs_root": str(tmp_path)},
                   dataset=line_data())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, inspected=False)
        main = app.main
        await pilot.press("s")
        await wait_for(pilot, lambda: main.run_state == "running" and main.bridge.latest,
                       what="running")
        (run_dir,) = tmp_path.iterdir()
        assert (run_dir / SOCKET_FILE).exists()
        assert send(run_dir, "pause")["ok"]
        await wait_for(pilot, lambda: main.run_state == "paused", what="paused from outside")
        assert send(run_dir, "resume")["ok"]
        await wait_for(pilot, lambda: main.run_state == "running", what="resumed from outside")
        await pilot.press("x")
        # The channel goes with the training thread's end (right after the stop record).
        await wait_for(pilot, lambda: not (run_dir / SOCKET_FILE).exists(),
                       what="the channel closed")
