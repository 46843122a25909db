"""`tui-nn watch` steers a live run through its control channel: p/c/l/x in a Pilot test
driving a real headless subprocess, two watchers seeing the same changes, and no keys for a
run without a channel."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import fastproc
import pytest

from test_watch import no_nvml
from tui_nn.engine.channel import SOCKET_FILE
from tui_nn.tui.screens.watch import WatchApp
from pilot_helpers import SIZE
from pilot_helpers import wait_for_live as wait_for

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _has(run: Path, **fields) -> bool:
    return any(all(r.get(k) == v for k, v in fields.items()) for r in _records(run))


@pytest.fixture
def live_run(tmp_path):
    run = tmp_path / "run"
    proc = fastproc.popen(["train", "curve", "--epochs", "100000", "--headless", "--run-dir",
                           str(run)], stdout=fastproc.DEVNULL, stderr=fastproc.PIPE, env=ENV)
    deadline = time.monotonic() + 90
    while not (run / SOCKET_FILE).exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the run never opened its channel"
        time.sleep(0.05)
    yield run, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


async def test_watch_keys_steer_a_real_run_and_a_second_watcher_sees_it(live_run):
    run, proc = live_run
    first, second = (WatchApp(run, gpu_reader=no_nvml) for _ in range(2))
    async with first.run_test(size=SIZE) as pilot, second.run_test(size=SIZE) as other:
        screen, other_screen = first.watch_screen, second.watch_screen
        await wait_for(pilot, lambda: screen.steerable, what="steerable")
        await pilot.press("p")
        await wait_for(pilot, lambda: _has(run, type="StateChanged", state="paused"),
                       what="paused record")
        await wait_for(other, lambda: other_screen._paused, what="second watcher sees pause")
        await pilot.press("c")
        await wait_for(pilot, lambda: _has(run, type="CheckpointSaved", reason="requested"),
                       what="requested checkpoint")
        await pilot.press("l")
        await pilot.press("p")
        await wait_for(pilot, lambda: _has(run, type="LrScaled", factor=0.5),
                       what="lr halved")
        await wait_for(other, lambda: not other_screen._paused, what="second sees resume")
        await pilot.press("x")
        await pilot.pause(0.3)
        await pilot.press("y")  # the confirmation
        await wait_for(pilot, lambda: proc.poll() is not None, timeout=60, what="run ended")
    records = _records(run)
    assert records[-1]["type"] == "Finished" and records[-1]["status"] == "stopped"


async def test_quitting_watch_never_stops_the_run(live_run):
    run, proc = live_run
    app = WatchApp(run, gpu_reader=no_nvml)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.watch_screen.steerable, what="steerable")
        await pilot.press("q")
    time.sleep(1.0)
    assert proc.poll() is None and not _has(run, type="Finished")


async def test_a_run_without_a_channel_offers_no_steering_keys(tmp_path):
    run = tmp_path / "done"
    fastproc.run(["train", "linear", "--epochs", "2", "--headless", "--run-dir", str(run)],
                 check=True, capture_output=True, env=ENV)
    app = WatchApp(run, gpu_reader=no_nvml)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        screen = app.watch_screen
        assert not screen.steerable and "no control channel" in screen.steer_reason
        assert screen.check_action("steer", ("pause",)) is False
        await pilot.press("x")  # nothing happens: no dialog
        await pilot.pause(0.2)
        assert len(app.screen_stack) == 1
