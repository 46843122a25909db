"""The app with data that streams (issue 29): your own Dataset from the train form, a folder's
decode progress in the log, the data-wait share in the system pane."""

from __future__ import annotations

from pathlib import Path

from tui_nn.tui.app import make_app

from pilot_helpers import SIZE, wait_for

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_data.py"


def log_text(app) -> str:
    return "\n".join(app.main.query_one("#event-log").lines_written)


async def test_the_form_trains_your_own_dataset(tmp_path):
    app = make_app(model="cnn", train_options={"dataset": f"{EXAMPLE}:build", "epochs": 1,
                                               "runs_root": str(tmp_path), "workers": 0},
                   start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.main.run_state in ("finished", "failed"),
                       what="the run's end", timeout=120)
        assert app.main.run_state == "finished", log_text(app)
        assert app.main.query_one("SystemPane").data_wait is not None  # streamed: measured


async def test_the_system_pane_shows_the_share_of_each_step_spent_waiting_for_data():
    from demo import demo_reading
    from tui_nn.tui.widgets.system_pane import SystemPane
    app = make_app(model="cnn")
    async with app.run_test(size=SIZE) as pilot:
        pane = app.main.query_one(SystemPane)
        pane.freeze(demo_reading())
        pane.data_wait = 0.374
        await pilot.pause()
        assert "data: waiting 37% of each step" in str(pane.render())
        pane.data_wait = None
        await pilot.pause()
        assert "waiting" not in str(pane.render())


async def test_a_folders_decode_progress_and_skipped_images_reach_the_log(tmp_path,
                                                                          monkeypatch):
    import numpy as np
    from PIL import Image

    from tui_nn.data import progress
    monkeypatch.setattr(progress, "INTERVAL_S", 0.0)  # a line per image
    monkeypatch.setenv("TUI_NN_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for name in ("ant", "bee"):
        (tmp_path / "tree" / name).mkdir(parents=True)
        for i in range(6):
            Image.fromarray((rng.random((28, 28, 3)) * 255).astype(np.uint8)).save(
                tmp_path / "tree" / name / f"{i}.png")
    (tmp_path / "tree" / "ant" / "junk.png").write_bytes(b"no image")
    app = make_app(model="cnn", train_options={
        "dataset": f"folder:{tmp_path / 'tree'}", "epochs": 1, "runs_root": str(tmp_path),
        "workers": 0, "memory_budget": "1KB"}, start=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.main.run_state in ("finished", "failed"),
                       what="the run's end", timeout=120)
        text = log_text(app)
        assert "decoding 13 images into the cache: 13/13 (100%), ETA 00:00" in text, text
        assert "skipped 1 unreadable image" in text and "junk.png" in text


async def test_your_own_dataset_in_the_form_gives_the_inspector_its_sample_shape(tmp_path):
    from tui_nn.tui.widgets.inspector import ShapeInspector
    from tui_nn.tui.widgets.train_form import TrainForm
    net = tmp_path / "net.py"
    net.write_text("import torch.nn as nn\n"
                   "class Net(nn.Sequential):\n"
                   "    def __init__(self):\n"
                   "        super().__init__(nn.Flatten(), nn.Linear(784, 3))\n")
    broken = tmp_path / "broken.py"
    broken.write_text("def build():\n    raise ValueError('no data today')\n")
    app = make_app(model=f"{net}:Net", train_options={"dataset": f"{EXAMPLE}:build"})
    async with app.run_test(size=SIZE) as pilot:
        inspector = app.main.query_one(ShapeInspector)
        await wait_for(pilot, lambda: inspector.input_text == "1x28x28", what="sample shape",
                       timeout=60)
        assert "samples of 1x28x28" in log_text(app)
        form = app.main.query_one(TrainForm)
        field = form.query_one("#dataset-custom")
        field.value = f"{broken}:build"
        await field.action_submit()
        await wait_for(pilot, lambda: "no data today" in log_text(app), what="the error")
        assert "dataset-custom" in form._errors and "no data today" in form._errors[
            "dataset-custom"]
