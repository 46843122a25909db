"""Texts that must say what is true (issue 31.7): the GAN's Insight views, runs' ranking of a GAN,
watch of an ended run, the form after `tui --resume`, the runs plot's y-axis labels."""

from __future__ import annotations

from tui_nn.tui.app import make_app

from helpers import blobs_images
from pilot_helpers import wait_for


async def test_gan_insight_views_say_what_a_gan_run_shows(tmp_path):
    app = make_app(model="gan", dataset=blobs_images(64, 32),
                   train_options={"epochs": 1, "batch_size": 32, "report_interval_s": 0.0,
                                  "runs_root": str(tmp_path)})
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state == "idle", what="catalog")
        await pilot.press("s")
        await wait_for(pilot, lambda: main.run_state == "finished", timeout=90, what="finish")
        main.action_show_insight("classes")
        await pilot.pause(0.3)
        confusion = main.query_one("#confusion")
        assert "Generated images" in str(main.query_one("#classes-head").render())
        # The classifiers' placeholder is not left under the generated images.
        assert not confusion.display or "No predictions" not in confusion.text.plain
        main.action_show_insight("flow")
        await pilot.pause(0.3)
        flow = main.query_one("#flow-bars").text.plain
        assert "No gradients yet" not in flow and "start a run" not in flow
        assert "step of its own" in flow


def test_runs_do_not_list_a_gan_by_ds_accuracy_as_its_best_accuracy(tmp_path):
    from tui_nn.engine import TrainConfig, Trainer
    from tui_nn.fmt import best_label
    from tui_nn.runs import discover_runs

    run = tmp_path / "gan"
    Trainer(TrainConfig("gan", epochs=1, batch_size=32, run_dir=str(run)),
            dataset=blobs_images(64, 32)).run()
    (info,) = discover_runs(tmp_path)
    assert info.metric == "d_accuracy"
    label = best_label(info.metric, info.best_value)
    assert label.startswith("d_accuracy ") and "acc" != label.split()[0]
    from tui_nn.fmt import higher_is_better
    assert not higher_is_better(info.metric)  # nothing ranks GANs by it


async def test_watch_of_an_ended_run_shows_no_speed_or_eta_and_lists_checkpoints_and_lr(
        tmp_path):
    import asyncio

    from demo import synthetic_run
    from test_watch import no_nvml, write_run
    from tui_nn.engine import events as ev
    from tui_nn.tui.screens.watch import WatchApp
    from pilot_helpers import wait_for_live

    events = synthetic_run(epochs=2, steps_per_epoch=20)[:-1]
    events[3:3] = [ev.CheckpointSaved(path="x/last.pt", step=20, epoch=1, reason="periodic"),
                   ev.LrScaled(step=25, factor=0.5, lr=0.005)]
    run = write_run(tmp_path / "run", events + [ev.Finished(
        status="stopped", run_dir=None, epochs_done=2, step=40, metric="accuracy",
        best_value=0.9, last_value=0.9, elapsed_s=3.0)])
    app = WatchApp(run, gpu_reader=no_nvml)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.watch_screen
        await wait_for_live(pilot, lambda: screen.status == "stopped", 10, "stopped")
        await asyncio.sleep(0.3)
        numbers = str(screen.query_one("#status-numbers").render())
        log = "\n".join(screen.query_one("#watch-log").lines_written)
    assert "samples/s" not in numbers and "ETA" not in numbers
    assert "lr 0.01" in numbers  # the rest of the last report stays
    assert "checkpoint (periodic, step 20)" in log and "lr × 0.5 → 0.005" in log


async def test_tui_resume_shows_the_lr_the_run_has_not_the_one_it_started_with(tmp_path):
    """The run's lr was halved while it trained (l in the app, `tui-nn control RUN lr 0.5`):
    config.json still says 0.05; the form shows what the run trains with."""
    from tui_nn.engine import TrainConfig, Trainer
    from tui_nn.engine import events as ev
    from test_tui_resume import SETTINGS, form_values

    run_dir = tmp_path / "runs" / "halved"

    def halve_then_stop(e):
        if isinstance(e, ev.StepMetrics) and e.step == 1:
            trainer.scale_lr(0.5)
        if isinstance(e, ev.EpochMetrics):
            trainer.stop()

    trainer = Trainer(TrainConfig("diabetes", epochs=4, run_dir=str(run_dir),
                                  report_interval_s=0.0, **SETTINGS), halve_then_stop)
    assert trainer.run().status == "stopped"
    app = make_app(train_options={"runs_root": str(tmp_path / "runs")}, resume=str(run_dir))
    async with app.run_test(size=(100, 30)) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state == "finished", what="finished",
                       timeout=40)
        await pilot.pause()
        assert form_values(main)["lr"] == "0.025"


async def test_runs_plot_labels_a_diverged_runs_axis_compactly(tmp_path):
    import dataclasses
    import re

    from demo import synthetic_run
    from test_watch import runs_app, write_run
    from tui_nn.engine import events as ev
    from tui_nn.tui.screens.runs import OverlayPlot, RunsScreen
    from pilot_helpers import wait_for_live

    events = [dataclasses.replace(e, val_loss=8.0 ** (40 * (e.epoch + 1)))
              if isinstance(e, ev.EpochMetrics) else e
              for e in synthetic_run(epochs=3, steps_per_epoch=10)]
    write_run(tmp_path / "20250101-120000-cnn-digits", events)
    app = runs_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_live(pilot, lambda: isinstance(app.screen, RunsScreen)
                            and app.screen.loaded, 10, "runs")
        plot = app.screen.query_one(OverlayPlot)
        await wait_for_live(pilot, lambda: plot.drawn_lines == 1, 5, "the run's curve")
        text = plot.render().plain
    assert "e+" in text
    assert not re.search(r"\d{12}", text)  # no 36-digit integers on the axis
