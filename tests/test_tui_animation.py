"""While a run is live the app does not animate (a tab switch's sliding underline is 18 screen
updates that the run on the same cores pays for); idle, it animates as Textual does, and a
TEXTUAL_ANIMATIONS the user set is kept either way."""

from __future__ import annotations

import dataclasses

import pytest

from helpers import blobs_images
from pilot_helpers import SIZE, wait_for
from tui_nn.tui.app import make_app


def _app(tmp_path):
    data = dataclasses.replace(blobs_images(256, 32), name="tiny", mean=None, std=None)
    return make_app(model="cnn", train_options={"epochs": 100, "batch_size": 8,
                                               "runs_root": str(tmp_path)}, dataset=data)


async def _levels_during_a_run(tmp_path) -> tuple[str, str, str]:
    app = _app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state == "idle", 30, "catalog")
        idle = app.animation_level
        await pilot.press("s")
        await wait_for(pilot, lambda: main.run_state == "running", 40, "the run")
        running = app.animation_level
        await pilot.press("x")
        await wait_for(pilot, lambda: main.run_state == "stopped", 60, "the stop")
        return idle, running, app.animation_level


@pytest.mark.parametrize("users", [None, "full"])
async def test_no_animation_while_a_run_is_live(tmp_path, monkeypatch, users):
    if users is None:
        monkeypatch.delenv("TEXTUAL_ANIMATIONS", raising=False)
        assert await _levels_during_a_run(tmp_path) == ("full", "none", "full")
    else:
        monkeypatch.setenv("TEXTUAL_ANIMATIONS", users)
        assert await _levels_during_a_run(tmp_path) == ("full", "full", "full")
