"""Snapshots of `tui-nn watch` and the runs screen, on run directories written from fixed
engine events (tests/test_watch.py makes them), with a fixed no-GPU reading."""

from __future__ import annotations

import asyncio
import time

from test_watch import make_runs, no_nvml, runs_app, write_run
from demo import synthetic_run
from tui_nn.tui.screens.runs import OverlayPlot, RunsScreen
from tui_nn.tui.screens.watch import WatchApp
from tui_nn.tui.widgets.system_pane import SystemPane


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _watch_app(tmp_path):
    run = write_run(tmp_path / "20250101-120000-cnn-digits", synthetic_run())
    return WatchApp(run, gpu_reader=no_nvml)


async def _watch_ready(pilot) -> None:
    screen = pilot.app.watch_screen
    await _until(lambda: screen.status == "finished")
    pane = screen.query_one(SystemPane)
    await _until(lambda: pane.reading is not None and pane.reading.process_note
                 and pane.reading.process_note.startswith("run "))
    await pilot.pause(0.2)


def test_watch_a_finished_run(snap_compare, tmp_path):
    assert snap_compare(_watch_app(tmp_path), terminal_size=(100, 30), run_before=_watch_ready)


def test_watch_at_80x24(snap_compare, tmp_path):
    assert snap_compare(_watch_app(tmp_path), terminal_size=(80, 24), run_before=_watch_ready)


def test_runs_screen_comparing_two_runs(snap_compare, tmp_path, monkeypatch):
    make_runs(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)  # the screen names its root: the same in every checkout

    async def run_before(pilot):
        app = pilot.app
        await _until(lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded)
        await pilot.press("down", "space", "down", "space")
        plot = app.screen.query_one(OverlayPlot)
        await _until(lambda: len(plot.series) == 2)
        await pilot.pause(0.2)

    from pathlib import Path
    assert snap_compare(runs_app(Path("runs")), terminal_size=(100, 30), run_before=run_before)
