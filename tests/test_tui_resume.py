"""Resuming in the app: a resumed run shows its own model, its settings and its whole history
(curves rebuilt from metrics.jsonl, then continued), whichever way it was resumed."""

from __future__ import annotations

from pathlib import Path

from tui_nn.engine import Trainer, TrainConfig
from tui_nn.engine import events as ev
from tui_nn.runs.history import load_history
from tui_nn.tui.app import make_app
from tui_nn.tui.history import RunHistory

from test_tui import SIZE, log_text, ready, wait_for

# diabetes on its own (local, 607-sample) data, with settings that are not the model's defaults
# (lr 0.1, batch 32, sgd), so the form can only show them if it read them from the run.
SETTINGS = dict(lr=0.05, batch_size=16, optimizer="adam")


def diabetes_run(tmp_path: Path, epochs: int = 3, stop_after: int | None = 2) -> Path:
    """A real diabetes run under tmp_path/runs, stopped after ``stop_after`` epochs (or
    finished when None)."""
    run_dir = tmp_path / "runs" / "earlier-diabetes"

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.EpochMetrics) and stop_after is not None \
                and e.epoch + 1 >= stop_after:
            trainer.stop()

    trainer = Trainer(TrainConfig("diabetes", epochs=epochs, run_dir=str(run_dir),
                                  tensorboard=False, **SETTINGS), on_event)
    assert trainer.run().status == ("finished" if stop_after is None else "stopped")
    return run_dir


def form_values(main) -> dict[str, str]:
    form = main.query_one("#form")
    return {"dataset": str(form.query_one("#dataset").value),
            "epochs": form.query_one("#epochs").value,
            "batch": form.query_one("#batch-size").value,
            "lr": form.query_one("#lr").value,
            "optimizer": str(form.query_one("#optimizer").value)}


def assert_continues(main, recorded, epochs: int) -> None:
    """The app's curves hold the recorded epochs and steps unchanged, then the new ones, each
    once and in order, on an axis from step 0."""
    history = main.history
    spe = main.bridge.started.steps_per_epoch
    assert [e.epoch for e in history.epochs] == list(range(epochs))
    assert [e.value for e in history.epochs[:len(recorded.epochs)]] == \
        [e.value for e in recorded.epochs]
    assert list(history.steps) == list(range(1, epochs * spe + 1))
    kept = len(recorded.steps)
    assert list(history.losses[:kept]) == list(recorded.losses)
    assert history.val_metric.count == epochs and history.train.count == epochs * spe
    assert main.query_one("#loss-plot").x_min == 0
    assert main.query_one("#metric-plot").x_min == 0


async def test_resume_key_shows_the_runs_model_settings_and_whole_history(tmp_path):
    run_dir = diabetes_run(tmp_path)
    recorded = load_history(run_dir)
    assert [e.epoch for e in recorded.epochs] == [0, 1]
    app = make_app(train_options={"runs_root": str(tmp_path / "runs")})
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await ready(pilot, inspected=False)
        assert main.model_source == "linear"  # the picker's first model, before the resume
        await pilot.press("u")
        await wait_for(pilot, lambda: app.screen.query("#resume-runs")
                       and app.screen.query_one("#resume-runs").option_count > 0,
                       what="resume list")
        await pilot.press("enter")
        await wait_for(pilot, lambda: main.run_state == "finished", what="finished")
        await pilot.pause()
        assert main.bridge.started.start_epoch == 2  # continued, not restarted
        assert main.model_source == "diabetes"
        zoo = main.query_one("#zoo")
        assert zoo.get_option_at_index(zoo.highlighted).id == "diabetes"
        assert form_values(main) == {"dataset": "diabetes", "epochs": "3", "batch": "16",
                                     "lr": "0.05", "optimizer": "adam"}
        assert_continues(main, recorded, epochs=3)
        status = main.query_one("#status")
        assert status.best_epoch >= 1 and status.epoch.epoch == 2
        log = log_text(app)
        assert "epochs 1–2 and steps up to" in log
        assert "epoch 3/3" in log and "epoch 1/3" not in log  # only the new epoch is logged
        # After the run the form keeps the run's settings (not the model's defaults).
        assert form_values(main)["lr"] == "0.05"


async def test_cli_resume_extends_a_finished_run_and_its_curves(tmp_path):
    """`tui-nn train --resume DIR --epochs 4` on a terminal: the app opens on the run, with
    the typed option applied to the run and shown in the form."""
    run_dir = diabetes_run(tmp_path, epochs=2, stop_after=None)
    recorded = load_history(run_dir)
    app = make_app(train_options={"epochs": 4, "runs_root": str(tmp_path / "runs")},
                   resume=str(run_dir))
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state == "finished", what="finished",
                       timeout=40)
        await pilot.pause()
        assert main.bridge.result.epochs_done == 4
        assert main.bridge.started.changes == {"epochs": [2, 4]}
        assert main.model_source == "diabetes"
        assert form_values(main) == {"dataset": "diabetes", "epochs": "4", "batch": "16",
                                     "lr": "0.05", "optimizer": "adam"}
        assert_continues(main, recorded, epochs=4)
        assert main.query_one("#tabs").active == "train"
        assert f"resuming {run_dir}" in log_text(app)


# ---- the plain-Python history ---------------------------------------------------------------
def test_history_rewind_forgets_what_the_resumed_session_trains_again():
    history = RunHistory(capacity=8)
    history.add_steps(1, [float(i) for i in range(1, 41)])  # steps 1..40, bucketed
    for epoch in range(4):
        history.add_epoch(epoch, 10 * (epoch + 1), 1.0, 2.0, 0.1 * epoch)
    versions = history.train_version, history.val_version
    history.rewind(start_step=20, start_epoch=2, metric="accuracy")
    assert list(history.steps) == list(range(1, 21))
    assert [e.epoch for e in history.epochs] == [0, 1]
    assert history.train.count == 20 and history.val_metric.count == 2
    # The plots redraw (curves.py compares each version with the one it drew).
    assert history.train_version > versions[0] and history.val_version > versions[1]
    history.add_steps(21, [0.5])
    assert history.train.last == (21, 0.5)


def test_history_best_epoch_follows_the_metric_direction():
    history = RunHistory()
    for epoch, value in enumerate([0.5, 0.7, 0.7, 0.6]):
        history.add_epoch(epoch, epoch, 1.0, 1.0, value)
    assert history.best_epoch().epoch == 1  # the first of equal bests, as the engine picks
    history.metric = "mse"
    assert history.best_epoch().epoch == 0


async def test_a_refused_resume_still_shows_the_run_and_logs_no_phantom_epochs(tmp_path):
    """Resuming a finished run without more epochs fails in the engine; the app still shows
    which run it was (model, settings, recorded curves) and logs none of its old epochs as
    if they had just been trained."""
    run_dir = diabetes_run(tmp_path, epochs=2, stop_after=None)
    recorded = load_history(run_dir)
    app = make_app(train_options={"runs_root": str(tmp_path / "runs")})
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await ready(pilot, inspected=False)
        loss_plot = main.query_one("#loss-plot")
        main.resume_run(str(run_dir))
        await wait_for(pilot, lambda: main.run_state == "failed", what="refused")
        await pilot.pause()
        assert "is finished" in log_text(app)
        assert main.model_source == "diabetes" and form_values(main)["lr"] == "0.05"
        assert [e.epoch for e in main.history.epochs] == [0, 1]
        assert list(main.history.losses) == list(recorded.losses)
        assert loss_plot.x_min == 0 and loss_plot._ys  # drawn from the recorded steps
        assert "epoch 1/" not in log_text(app)


async def test_steps_recorded_after_the_checkpoint_are_replaced_by_the_redone_ones(tmp_path):
    """A run killed between checkpoints has steps (and an epoch) in metrics.jsonl that its
    last.pt does not hold; the resumed session trains them again, and the curves show each
    step once: the new values, not the lost ones."""
    import json

    run_dir = diabetes_run(tmp_path)
    start = load_history(run_dir).steps[-1]
    lost = [{"type": "StepMetrics", "epoch": 2, "step": start + 10, "first_step": start + 1,
             "losses": [99.0] * 10, "lr": 0.05, "samples_per_s": 1.0, "eta_s": None,
             "epoch_step": 11, "steps_per_epoch": 38, "total_steps": 114},
            {"type": "EpochMetrics", "epoch": 2, "step": start + 10, "train_loss": 99.0,
             "val_loss": 99.0, "metric": "accuracy", "value": 0.01, "best_value": 0.9,
             "is_best": False, "elapsed_s": 1.0, "epoch_time_s": 1.0, "samples_per_s": 1.0}]
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in lost)
    app = make_app(train_options={"runs_root": str(tmp_path / "runs")}, resume=str(run_dir))
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state == "finished", what="finished")
        assert main.bridge.started.start_step == start
        assert 99.0 not in main.history.losses
        assert [e.epoch for e in main.history.epochs] == [0, 1, 2]
        assert main.history.epochs[2].value != 0.01
        assert list(main.history.steps) == list(range(1, 115))


async def test_status_and_curves_show_the_earlier_epochs_before_new_ones_arrive(tmp_path):
    run_dir = diabetes_run(tmp_path)
    recorded = load_history(run_dir)
    best = max(recorded.epochs, key=lambda e: e.value)
    app = make_app(train_options={"runs_root": str(tmp_path / "runs")})
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await ready(pilot, inspected=False)
        main.resume_run(str(run_dir))
        main.bridge.pause()  # held before its first step: only the recorded history is there
        status = main.query_one("#status")
        await wait_for(pilot, lambda: main.bridge.started is not None
                       and status.epoch is not None, what="status of the earlier epochs")
        await pilot.pause()
        assert main.bridge.latest_epoch is None  # no new epoch yet
        assert status.epoch.epoch == 1 and status.epoch.value == recorded.epochs[1].value
        assert status.epoch.best_value == best.value and status.best_epoch == best.epoch + 1
        assert [e.epoch for e in main.history.epochs] == [0, 1]
        assert main.query_one("#metric-plot")._ys  # the recorded epochs are drawn
        assert main.query_one("#loss-plot").x_min == 0
        main.bridge.resume()
        await wait_for(pilot, lambda: main.run_state == "finished", what="finished")
        assert [e.epoch for e in main.history.epochs] == [0, 1, 2]


async def test_curves_survive_points_left_of_their_axis(tmp_path):
    """Steps recorded before the axis' first step (a resumed session's axis once started at
    its checkpoint) are left out, not handed to plotext, which fails on a labelled series
    with no point in range."""
    app = make_app(train_options={"runs_root": str(tmp_path)})
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await ready(pilot, inspected=False)
        main.history.add_steps(1, [float(i) for i in range(1, 78)])  # steps 1..77
        main.history.add_epoch(0, 38, 1.0, 1.0, 0.5)
        main.history.add_steps(78, [0.5, 0.4])
        curves = main.query_one("#curves")
        curves.set_axis(78, 114)
        main.show_tab("train")
        curves.redraw()
        await pilot.pause(0.3)
        assert app.is_running
        loss_plot = main.query_one("#loss-plot")
        assert loss_plot.redraws and 0.4 <= min(loss_plot._ys) <= max(loss_plot._ys) <= 0.5
