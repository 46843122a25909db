"""Hostile input, round two (issue 26): strings made inert where records are decoded, huge
finite values drawn clipped, the TensorBoard reader range-checked, `--resume` through the
bounded readers, metrics.jsonl strict JSON and a run directory's owner and mode checked."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import pytest

from hostile import CLEAR, ESC_TITLE, good_run, inert, record, started
from tui_nn.engine import events as ev
from tui_nn.runs import load_history, read_run_info

BAD_METRIC = f"acc{ESC_TITLE}{CLEAR}\u202e"


def _metric_run(root: Path, metric: str = BAD_METRIC) -> Path:
    run = root / "x"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(
        record(type="RunStarted", metric=metric)
        + record(type="EpochMetrics", epoch=0, value=0.5, best_value=0.5))
    return run


# ---- 1: strings inert at decode ---------------------------------------------------------------
def test_runs_table_shows_a_hostile_metric_name_inert(tmp_path):
    from tui_nn.commands.runs_cmd import run_runs

    _metric_run(tmp_path)
    out = io.StringIO()
    assert run_runs(str(tmp_path), as_json=False, out=out) == 0
    assert inert(out.getvalue()) and "acc\\x1b]0;pwned" in out.getvalue()


def test_every_record_reader_gets_inert_strings(tmp_path):
    run = _metric_run(tmp_path)
    assert inert(read_run_info(run, check_writers=False).metric)
    assert inert(load_history(run).metric)
    raw = {**started(model=f"m{ESC_TITLE}"), "metric": BAD_METRIC,
           "changes": {f"k{CLEAR}": [f"a{CLEAR}", 1]}}
    event = ev.from_record(raw)
    assert inert(event.model) and inert(event.metric)
    assert all(inert(k) and inert(v[0]) for k, v in event.changes.items())
    failed = ev.from_record({"type": "Failed", "message": f"boom\n{ESC_TITLE}",
                             "details": {"traceback": f"line\n{CLEAR}"}})
    assert inert(failed.message) and "\n" in failed.message  # a message keeps its lines
    assert inert(failed.details["traceback"])


def test_a_run_api_metric_name_reaches_no_reader_raw(tmp_path):
    import tui_nn

    with tui_nn.Run(tmp_path / "r", metric=f"acc{CLEAR}", epochs=1) as run:
        run.log_step(loss=1.0)
        run.log_epoch(val_loss=0.5, **{f"acc{CLEAR}": 0.5})
    info = read_run_info(tmp_path / "r", check_writers=False)
    assert inert(info.metric) and info.metric.startswith("acc\\x1b[2J")


def test_control_prints_a_hostile_run_path_inert(tmp_path, capsys):
    from tui_nn.commands.control_cmd import run_control

    run = good_run(tmp_path / f"r{ESC_TITLE}\u202e", checkpoint=True)
    assert run_control(str(run), "pause", None, str(tmp_path)) == 1
    err = capsys.readouterr().err
    assert inert(err) and "\\x1b]0;pwned" in err


# ---- 3: huge finite values drawn clipped --------------------------------------------------------
def _huge_run(path: Path) -> Path:
    """A finished run that logged losses 1.0, 1e308, -1e308 and a val_loss of 1e308."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model": "cnn", "dataset": "digits"}))
    lines = [record(**started()),
             record(type="StepMetrics", epoch=0, step=3, first_step=1,
                    losses=[1.0, 1e308, -1e308], lr=0.1, samples_per_s=1.0, eta_s=None,
                    epoch_step=3, steps_per_epoch=3, total_steps=6),
             record(type="EpochMetrics", epoch=0, step=3, train_loss=1e308, val_loss=1e308,
                    metric="accuracy", value=0.5, best_value=0.5, is_best=True,
                    elapsed_s=1.0, epoch_time_s=1.0, samples_per_s=1.0),
             record(type="StepMetrics", epoch=1, step=6, first_step=4,
                    losses=[-1e308, 2.0, 1e308], lr=0.1, samples_per_s=1.0, eta_s=None,
                    epoch_step=3, steps_per_epoch=3, total_steps=6),
             record(type="EpochMetrics", epoch=1, step=6, train_loss=-1e308, val_loss=0.5,
                    metric="accuracy", value=1e308, best_value=1e308, is_best=True,
                    elapsed_s=2.0, epoch_time_s=1.0, samples_per_s=1.0),
             record(type="Finished", status="finished", run_dir=None, epochs_done=2, step=6,
                    metric="accuracy", best_value=1e308, last_value=1e308, elapsed_s=2.0)]
    (path / "metrics.jsonl").write_text("".join(lines))
    return path


def test_watch_draws_huge_finite_values_clipped(tmp_path):
    import asyncio

    from pilot_helpers import SIZE, wait_for
    from tui_nn.tui.screens.watch import make_watch_app
    from tui_nn.tui.widgets.curves import LossPlot

    run = _huge_run(tmp_path / "run")

    async def scenario():
        app = make_watch_app(run)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.watch_screen
            await wait_for(pilot, lambda: screen.status == "finished", 15, "finished")
            await pilot.pause(0.5)
            app.export_screenshot()
            loss = app.screen.query_one(LossPlot)
            assert app.is_running and loss.redraws and loss.clipped

    asyncio.run(scenario())


def test_runs_screen_marks_a_run_of_huge_values_without_crashing(tmp_path):
    import asyncio

    from pilot_helpers import SIZE, wait_for
    from textual.app import App
    from tui_nn.tui.screens.runs import OverlayPlot, RunsScreen

    _huge_run(tmp_path / "huge")
    good_run(tmp_path / "good")

    class RunsApp(App):
        def on_mount(self):
            self.push_screen(RunsScreen(tmp_path))

    async def scenario():
        app = RunsApp()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded,
                           10, "runs")
            plot = app.screen.query_one(OverlayPlot)
            for mode in range(3):
                await pilot.press("space", "down", "space", "up")
                await wait_for(pilot, lambda: len(plot.series) == 2, 5, "two marked runs")
                await pilot.pause(0.3)
                app.export_screenshot()
                assert app.is_running and plot.drawn_lines == 2 and plot.clipped
                await pilot.press("u", "m")

    asyncio.run(scenario())
