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
