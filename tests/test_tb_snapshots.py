"""Snapshots of `tui-nn watch` on TensorBoard log directories (tests/test_tb_dirs.py writes
them with SummaryWriter), at the default size and at 80×24."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from test_tb_dirs import lightning_dir, summary_writer_dir  # noqa: E402
from tui_nn.runs import tensorboard as tb  # noqa: E402
from tui_nn.tui.screens.tb_watch import TensorBoardWatchApp  # noqa: E402


def _idle(log: Path) -> Path:
    old = time.time() - 3600  # "idle" whenever the test runs
    for f in tb.event_files(log):
        os.utime(f, (old, old))
    return log


def _ready(steps: int):
    async def run_before(pilot) -> None:
        screen = pilot.app.watch_screen
        deadline = time.monotonic() + 20
        while not (screen.last_step == steps and screen.status == "idle"):
            assert time.monotonic() < deadline, "timed out"
            await pilot.pause(0.05)
        await pilot.pause(0.3)
    return run_before


def test_watch_a_summarywriter_log(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the screen names the directory: the same in every checkout
    log = _idle(summary_writer_dir(Path("logs/exp1")))
    assert snap_compare(TensorBoardWatchApp(log), terminal_size=(100, 30),
                        run_before=_ready(49))


def test_watch_a_lightning_log_at_80x24(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _idle(lightning_dir(Path(".")))
    assert snap_compare(TensorBoardWatchApp(Path("lightning_logs/version_0")),
                        terminal_size=(80, 24), run_before=_ready(11))
