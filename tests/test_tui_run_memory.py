"""The system pane's "memory at batch B: activations predicted X · measured Y" line (issue
17): fed by a real run's RunStarted in the app, predicted on a worker when the Model tab's
estimate is for another batch, and safe with whatever a metrics.jsonl holds."""

from __future__ import annotations

import dataclasses

from helpers import blobs_images
from pilot_helpers import SIZE, wait_for
from tui_nn.engine import events as ev
from tui_nn.tui.app import make_app
from tui_nn.tui.widgets.run_memory import RunMemory, run_memory_from, run_memory_text
from tui_nn.tui.widgets.system_pane import SystemPane


def _started(measured) -> ev.RunStarted:
    return ev.RunStarted(
        run_dir=None, model="cnn", dataset="tiny", device="cpu", device_name="CPU",
        task="classification", metric="accuracy", n_train=128, n_val=32, epochs=1,
        batch_size=7, steps_per_epoch=19, total_steps=19, parameters=8490,
        memory_measured=measured)


def test_the_line_says_predicted_and_measured_or_measured_alone():
    both = run_memory_text(RunMemory(64, measured=3 * 2**20, predicted=3 * 2**20)).plain
    assert both == "memory at batch 64: activations predicted 3.0 MiB · measured 3.0 MiB (1.00×)"
    alone = run_memory_text(RunMemory(64, measured=3 * 2**20)).plain
    assert alone == "memory at batch 64: activations measured 3.0 MiB"
    gpu = run_memory_text(RunMemory(8, measured=2**20, gpu_allocated=2**30)).plain
    assert gpu.endswith("· GPU allocated up to 1.0 GiB")


def test_figures_from_a_file_must_be_byte_counts():
    assert run_memory_from(_started(None)) is None
    assert run_memory_from(_started({"batch_size": "[red]7", "saved_activation_bytes": 5})) \
        is None
    assert run_memory_from(_started({"batch_size": 7, "saved_activation_bytes": True})) is None
    assert run_memory_from(_started({"batch_size": 7, "saved_activation_bytes": -1})) is None
    assert run_memory_from(_started({"batch_size": 7, "saved_activation_bytes": 5})) == \
        RunMemory(7, 5)


async def test_a_live_run_shows_predicted_beside_measured(tmp_path):
    data = dataclasses.replace(blobs_images(128, 32), name="tiny", mean=None, std=None)
    app = make_app(model="cnn", train_options={"epochs": 2, "batch_size": 32,
                                               "runs_root": str(tmp_path)}, dataset=data)
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state != "loading", what="catalog")
        pane = main.query_one(SystemPane)
        await pilot.press("s")
        await wait_for(pilot, lambda: pane.run_memory is not None
                       and pane.run_memory.predicted is not None, 40, "the memory line")
        memory = pane.run_memory
        measured = main.bridge.started.memory_measured
        assert memory.batch_size == 32 and memory.measured == measured["saved_activation_bytes"]
        # The run's figure includes the loss; the prediction is the model's forward.
        assert abs(memory.measured - memory.predicted) <= 0.1 * memory.predicted
        text = str(pane.render())
        assert "memory at batch 32: predicted" in text and "· measured" in text
        await wait_for(pilot, lambda: main.run_state == "finished", 40, "finish")


async def test_a_batch_the_model_tab_did_not_estimate_is_predicted_on_a_worker():
    app = make_app(model="cnn")
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.model_source == "cnn", what="catalog")
        pane = main.query_one(SystemPane)
        main.run.show_run_memory(_started({"batch_size": 7, "saved_activation_bytes": 12345,
                                           "rss_bytes": 1}))
        assert pane.run_memory == RunMemory(7, 12345)  # measured at once, predicted to come
        await wait_for(pilot, lambda: pane.run_memory.predicted is not None, 30, "estimate")
        from tui_nn.tui.widgets.run_memory import estimate_memory
        assert pane.run_memory.predicted == estimate_memory("cnn", None, 7).activations


async def test_watch_shows_the_measured_figure_from_metrics_jsonl(tmp_path):
    """watch has no prediction (that would trace the model): the measured figure alone."""
    import json

    from demo import synthetic_run
    from pilot_helpers import wait_for_live
    from tui_nn.tui.screens.watch import WatchApp

    events = synthetic_run(epochs=1, steps_per_epoch=10)
    started = dataclasses.replace(events[0], memory_measured={
        "batch_size": 64, "saved_activation_bytes": 3 * 2**20, "rss_bytes": 1})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "cnn", "dataset": "digits"}))
    (run / "metrics.jsonl").write_text("".join(
        json.dumps(e.to_dict()) + "\n" for e in [started, *events[1:]]))
    app = WatchApp(run)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.watch_screen.query_one(SystemPane)
        await wait_for_live(pilot, lambda: pane.run_memory is not None
                            and "measured" in str(pane.render()), 10, "the memory line")
        assert "memory at batch 64: activations measured 3.0 MiB" in str(pane.render())
        assert "predicted" not in str(pane.render())
