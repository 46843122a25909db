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
    assert not info.higher_is_better  # nothing ranks GANs by it
