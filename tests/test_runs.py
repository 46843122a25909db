"""Runs on disk: discovery and status, history, config differences, CSV export, `tui-nn runs`
and `tui-nn export`. The runs are real ones, trained by the engine on a three-point line."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import line_dataset
from tui_nn.cli import app
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.engine.rundir import RunDir
from tui_nn.runs import (RunNotFound, config_diff, discover_runs, export_csv, load_history,
                         newest_run, read_run_info, resolve_run)
from tui_nn.runs import liveness

runner = CliRunner()


def _train(run_dir: Path, stop_at_step: int | None = None, **config) -> tuple[object, list]:
    events: list[ev.Event] = []
    holder: dict[str, Trainer] = {}

    def callback(event: ev.Event) -> None:
        events.append(event)
        if (stop_at_step is not None and isinstance(event, ev.StepMetrics)
                and event.step >= stop_at_step):
            holder["trainer"].stop()

    cfg = TrainConfig("linear", run_dir=str(run_dir), report_interval_s=0.0,
                      checkpoint_every_minutes=0, **config)
    trainer = holder["trainer"] = Trainer(cfg, callback, dataset=line_dataset())
    return trainer.run(), events


def _drop_last_record(run_dir: Path) -> None:
    """What a SIGKILL leaves: the run's record stops before its Finished line."""
    path = run_dir / "metrics.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    assert json.loads(lines[-1])["type"] == "Finished"
    path.write_bytes(b"".join(lines[:-1]))


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory):
    """runs/ with a finished, a stopped, a failed and an interrupted run, plus a nested one."""
    root = tmp_path_factory.mktemp("proj") / "runs"
    results = {}
    results["finished"], results["finished_events"] = _train(root / "r-finished", epochs=5)
    results["stopped"], _ = _train(root / "r-stopped", epochs=50, stop_at_step=3)
    results["failed"], _ = _train(root / "r-failed", epochs=50, lr=10.0)
    results["interrupted"], _ = _train(root / "r-interrupted", epochs=4)
    _drop_last_record(root / "r-interrupted")
    _train(root / "sweep" / "lr-0.05", epochs=2, lr=0.05)
    (root / "notes").mkdir()  # not a run: no config.json, no metrics.jsonl
    (root / "notes" / "todo.txt").write_text("try adam\n")
    return root, results


@pytest.fixture
def runs_copy(runs_root, tmp_path):
    root, results = runs_root
    copy = tmp_path / "runs"
    shutil.copytree(root, copy)
    return copy, results


def _by_name(root: Path) -> dict:
    return {r.name: r for r in discover_runs(root)}


def test_the_engine_made_the_runs_the_tests_expect(runs_root):
    _, results = runs_root
    assert isinstance(results["finished"], ev.Finished) and results["finished"].status == "finished"
    assert isinstance(results["stopped"], ev.Finished) and results["stopped"].status == "stopped"
    assert isinstance(results["failed"], ev.Failed) and results["failed"].kind == "nan"


def test_discover_reports_each_status(runs_root):
    root, results = runs_root
    runs = _by_name(root)
    assert set(runs) == {"r-finished", "r-stopped", "r-failed", "r-interrupted", "sweep/lr-0.05"}
    assert {n: r.status for n, r in runs.items()} == {
        "r-finished": "finished", "r-stopped": "stopped", "r-failed": "failed",
        "r-interrupted": "interrupted", "sweep/lr-0.05": "finished"}


def test_finished_run_summary_matches_its_finished_event(runs_root):
    root, results = runs_root
    run, done = _by_name(root)["r-finished"], results["finished"]
    assert (run.model, run.dataset, run.task, run.metric) == ("linear", "line", "regression", "mse")
    assert (run.epochs_done, run.epochs_total) == (5, 5)
    assert (run.steps_done, run.steps_total) == (5, 5)
    assert run.best_value == pytest.approx(done.best_value)
    assert run.duration_s == pytest.approx(done.elapsed_s)
    assert run.sessions == 1 and run.has_checkpoint and not run.resumable
    assert run.size_bytes == sum(f.stat().st_size for f in run.path.iterdir())
    assert run.started_at is not None and run.last_update >= run.started_at - 1
    assert run.config["lr"] == 0.01 and run.message is None


def test_stopped_failed_and_interrupted_runs_can_be_resumed(runs_root):
    root, results = runs_root
    runs = _by_name(root)
    stopped = runs["r-stopped"]
    assert (stopped.epochs_done, stopped.epochs_total, stopped.steps_done) == (3, 50, 3)
    assert stopped.resumable
    failed = runs["r-failed"]
    assert failed.failure_kind == "nan" and "--lr" in failed.message
    assert failed.steps_done == results["failed"].step and failed.resumable
    interrupted = runs["r-interrupted"]
    assert (interrupted.epochs_done, interrupted.epochs_total) == (4, 4)
    assert interrupted.resumable and interrupted.message is None


def test_runs_are_listed_newest_first(tmp_path):
    for name, started in [("b", "2024-05-01T10:00:00+0000"), ("a", "2024-06-01T10:00:00+0000"),
                          ("c", "2023-01-01T10:00:00+0000")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(
            {"model": "mlp", "dataset": "digits", "started_at": started}))
    assert [r.name for r in discover_runs(tmp_path, check_writers=False)] == ["a", "b", "c"]
    assert newest_run(tmp_path).name == "a"


def test_missing_root_has_no_runs(tmp_path):
    assert discover_runs(tmp_path / "nowhere") == []
    assert newest_run(tmp_path / "nowhere") is None


def test_a_root_that_is_itself_a_run_lists_that_run(runs_root):
    root, _ = runs_root
    assert [r.status for r in discover_runs(root / "r-stopped")] == ["stopped"]


def test_torn_last_line_and_garbage_lines_are_skipped(runs_copy):
    root, _ = runs_copy
    path = root / "r-finished" / "metrics.jsonl"
    before = load_history(root / "r-finished")
    lines = path.read_bytes().splitlines(keepends=True)
    lines.insert(3, b"\x00\x00 not json at all\n")
    lines.insert(5, b'{"type":"StepMetrics","epoch":"x"}\n')  # parses, but has no losses
    path.write_bytes(b"".join(lines) + b'{"type":"StepMetrics","epoch":0,"ste')
    run = read_run_info(root / "r-finished")
    assert run.status == "finished" and run.epochs_done == 5
    after = load_history(root / "r-finished")
    assert list(after.steps) == list(before.steps) and after.epochs == before.epochs


def test_a_run_whose_record_is_open_for_writing_is_running(tmp_path):
    rd = RunDir(tmp_path / "live")
    rd.write_config({"model": "cnn", "dataset": "mnist", "epochs": 3})
    rd.append_metrics({"type": "RunStarted", "model": "cnn", "dataset": "mnist", "epochs": 3,
                       "metric": "accuracy", "start_epoch": 0, "start_step": 0})
    try:
        assert read_run_info(rd.path).status == "running"
        old = time.time() - 3600
        os.utime(rd.metrics_path, (old, old))
        # An hour without a write (a long pause), but the process holds the file: running.
        assert read_run_info(rd.path).status == "running"
        rd.append_metrics({"type": "StateChanged", "state": "paused"})
        assert read_run_info(rd.path).paused
    finally:
        rd.close()
    assert read_run_info(rd.path).status == "interrupted"
    # A reader (tail -f, `tui-nn watch`) holding the file open does not make it alive.
    with open(rd.metrics_path):
        assert read_run_info(rd.path).status == "interrupted"


def test_where_psutil_cannot_tell_a_writer_the_age_decides(tmp_path, monkeypatch):
    """macOS and Windows: psutil gives no open file's mode, so a reader would pass for the
    trainer; there the scan is off and the file's age says whether the run is alive."""
    monkeypatch.setattr(liveness.psutil, "LINUX", False)
    rd = RunDir(tmp_path / "r")
    rd.write_config({"model": "mlp", "dataset": "digits"})
    rd.append_metrics({"type": "RunStarted", "model": "mlp", "dataset": "digits", "epochs": 3})
    try:
        assert liveness.writers_of_metrics_files() is None
        assert liveness.writer_pid(rd.metrics_path) is None
        assert not liveness.scan_is_trusted(rd.metrics_path)
        assert read_run_info(rd.path).status == "running"  # written just now
        old = time.time() - 600
        os.utime(rd.metrics_path, (old, old))
        os.utime(rd.config_path, (old, old))
        assert read_run_info(rd.path).status == "interrupted"  # though it is held open
    finally:
        rd.close()


def test_without_the_process_scan_a_recent_write_means_running(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.write_config({"model": "mlp", "dataset": "digits"})  # every real run has one
    rd.append_metrics({"type": "RunStarted", "model": "mlp", "dataset": "digits", "epochs": 3})
    rd.close()
    assert read_run_info(rd.path, check_writers=False).status == "running"
    old = time.time() - 600
    os.utime(rd.metrics_path, (old, old))
    os.utime(rd.config_path, (old, old))
    assert read_run_info(rd.path, check_writers=False).status == "interrupted"
    assert read_run_info(rd.path, check_writers=False, live_window_s=3600).status == "running"


def test_unreadable_config_is_reported_not_raised(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text('{"model": "cn')
    run = read_run_info(tmp_path / "r", check_writers=False)
    assert run.model == "?" and "config.json" in run.message


def test_history_has_every_step_and_epoch_of_the_run(runs_root):
    root, results = runs_root
    history = load_history(root / "r-finished")
    steps = [e for e in results["finished_events"] if isinstance(e, ev.StepMetrics)]
    assert list(history.steps) == [1, 2, 3, 4, 5]
    assert list(history.losses) == [loss for e in steps for loss in e.losses]
    assert list(history.lrs) == pytest.approx([0.01] * 5)
    assert list(history.step_epochs) == [0, 1, 2, 3, 4]
    epochs = [e for e in results["finished_events"] if isinstance(e, ev.EpochMetrics)]
    assert [(p.epoch, p.step, p.val_loss, p.value) for p in history.epochs] == \
        [(e.epoch, e.step, e.val_loss, e.value) for e in epochs]
    assert history.metric == "mse" and history.sessions == 1


def _write_records(path: Path, records: list[dict]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _started(start_step=0, start_epoch=0, epochs=3):
    return {"type": "RunStarted", "model": "mlp", "dataset": "digits", "metric": "accuracy",
            "epochs": epochs, "total_steps": 4 * epochs, "start_step": start_step,
            "start_epoch": start_epoch}


def _steps(first, last, epoch, loss):
    return {"type": "StepMetrics", "epoch": epoch, "step": last, "first_step": first,
            "losses": [loss] * (last - first + 1), "lr": 0.1}


def _epoch(epoch, value, elapsed):
    return {"type": "EpochMetrics", "epoch": epoch, "step": 4 * (epoch + 1), "train_loss": 1.0,
            "val_loss": 1.0, "metric": "accuracy", "value": value, "best_value": value,
            "elapsed_s": elapsed, "epoch_time_s": 1.0, "samples_per_s": 10.0}


def test_a_resumed_run_counts_redone_steps_and_epochs_once(tmp_path):
    # Killed in epoch 2 while its last checkpoint was from the end of epoch 0 (step 4; the
    # engine skips epoch checkpoints younger than 10 s): the resumed session redoes epochs 1-2.
    _write_records(tmp_path / "r", [
        _started(), _steps(1, 4, 0, 9.0), _epoch(0, 0.5, 10.0), _steps(5, 8, 1, 9.0),
        _epoch(1, 0.6, 20.0), _steps(9, 10, 2, 9.0),
        _started(start_step=4, start_epoch=1), _steps(5, 8, 1, 1.0), _epoch(1, 0.7, 10.0),
        _steps(9, 12, 2, 1.0), _epoch(2, 0.8, 20.0),
        {"type": "Finished", "status": "finished", "epochs_done": 3, "step": 12,
         "metric": "accuracy", "best_value": 0.8, "last_value": 0.8, "elapsed_s": 21.0}])
    history = load_history(tmp_path / "r")
    assert list(history.steps) == list(range(1, 13))
    assert list(history.losses) == [9.0] * 4 + [1.0] * 8
    assert [(p.epoch, p.value) for p in history.epochs] == [(0, 0.5), (1, 0.7), (2, 0.8)]
    run = read_run_info(tmp_path / "r")
    assert run.sessions == 2 and run.status == "finished" and run.epochs_done == 3
    # The first session ran ~20 s before it was killed, the second 21 s.
    assert run.duration_s == pytest.approx(41.0)


def test_a_resume_killed_again_forgets_what_it_had_not_redone_yet(tmp_path):
    _write_records(tmp_path / "r", [
        _started(), _steps(1, 4, 0, 9.0), _epoch(0, 0.5, 10.0), _steps(5, 8, 1, 9.0),
        _epoch(1, 0.6, 20.0), _started(start_step=4, start_epoch=1), _steps(5, 6, 1, 1.0)])
    (tmp_path / "r" / "config.json").write_text('{"model": "cnn"}\n')  # resumable
    history = load_history(tmp_path / "r")
    assert list(history.steps) == [1, 2, 3, 4, 5, 6]
    assert [p.epoch for p in history.epochs] == [0]
    run = read_run_info(tmp_path / "r")
    assert (run.status, run.epochs_done, run.steps_done) == ("interrupted", 1, 6)


def test_a_run_resumed_by_the_engine_has_one_history(runs_copy):
    root, _ = runs_copy
    run_dir = root / "r-stopped"
    cfg = TrainConfig("linear", epochs=6, report_interval_s=0.0)
    result = Trainer(cfg, dataset=line_dataset(), resume_from=run_dir).run()
    assert isinstance(result, ev.Finished) and result.status == "finished"
    run = read_run_info(run_dir)
    assert (run.status, run.sessions, run.epochs_done, run.epochs_total) == ("finished", 2, 6, 6)
    assert list(load_history(run_dir).steps) == [1, 2, 3, 4, 5, 6]


def test_config_diff_shows_only_what_differs(runs_root):
    root, _ = runs_root
    runs = _by_name(root)
    diff = config_diff([runs["r-finished"], runs["r-failed"]])
    assert diff["lr"] == [0.01, 10.0]
    assert diff["epochs"] == [5, 50]
    assert "model" not in diff and "run_dir" not in diff and "started_at" not in diff
    assert config_diff([root / "r-finished", root / "r-finished"]) == {}


def test_config_diff_on_plain_dicts():
    diff = config_diff([{"lr": 1, "amp": True, "opt": {"name": "adam", "betas": [0.9, 0.99]}},
                        {"lr": 1.0, "amp": 1, "opt": {"name": "adam", "betas": [0.9, 0.9]},
                         "seed": 3}])
    assert diff == {"amp": [True, 1], "opt.betas": [[0.9, 0.99], [0.9, 0.9]], "seed": [None, 3]}
    assert config_diff([]) == {}


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_export_csv_writes_steps_and_epochs(runs_copy):
    root, results = runs_copy
    result = export_csv(root / "r-finished")
    assert result.steps_path == root / "r-finished" / "metrics_steps.csv"
    steps = _read_csv(result.steps_path)
    history = load_history(root / "r-finished")
    assert list(steps[0]) == ["step", "epoch", "loss", "lr"]
    assert [(int(r["step"]), int(r["epoch"]), float(r["loss"]), float(r["lr"])) for r in steps] \
        == list(history.step_rows())
    epochs = _read_csv(result.epochs_path)
    assert list(epochs[0])[:6] == ["epoch", "step", "train_loss", "val_loss", "metric", "value"]
    assert [float(r["value"]) for r in epochs] == [p.value for p in history.epochs]
    assert {r["metric"] for r in epochs} == {"mse"}
    assert (result.n_steps, result.n_epochs) == (5, 5)


def test_export_csv_of_a_diverged_run_spells_inf(runs_copy):
    root, _ = runs_copy
    epochs = _read_csv(export_csv(root / "r-failed", root / "out").epochs_path)
    assert epochs and all(r["value"] for r in epochs)
    assert float(epochs[-1]["value"]) == float("inf")  # the mse of the step before NaN


def test_resolve_run_by_path_name_prefix_and_latest(runs_root, monkeypatch):
    root, _ = runs_root
    assert resolve_run(root / "r-failed", root) == root / "r-failed"
    assert resolve_run("r-failed", root) == root / "r-failed"
    assert resolve_run("sweep/lr-0.05", root) == root / "sweep" / "lr-0.05"
    assert resolve_run("lr-0", root) == root / "sweep" / "lr-0.05"
    assert resolve_run(root / "sweep" / "lr-0", root) == root / "sweep" / "lr-0.05"
    assert resolve_run("latest", root) == newest_run(root).path
    with pytest.raises(RunNotFound, match="matches 4 runs"):
        resolve_run("r-", root)
    with pytest.raises(RunNotFound, match="r-failed"):
        resolve_run("r-faild", root)
    with pytest.raises(RunNotFound, match="not a run directory"):
        resolve_run(root / "notes", root)


# ---- the CLI ----------------------------------------------------------------------------


def test_cli_runs_table(runs_root):
    root, _ = runs_root
    result = runner.invoke(app, ["runs", "--root", str(root)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["run", "model", "dataset", "status", "epochs", "best",
                                "duration", "size"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"r-finished", "r-stopped", "r-failed", "r-interrupted",
                         "sweep/lr-0.05"}
    assert rows["r-finished"].split()[3:5] == ["finished", "5/5"]
    assert rows["r-stopped"].split()[3:5] == ["stopped", "3/50"]
    assert "failed (nan)" in rows["r-failed"]
    assert rows["r-interrupted"].split()[3:5] == ["interrupted", "4/4"]
    assert all(" KiB" in row and ":" in row for row in rows.values())


def test_cli_runs_json(runs_root):
    root, results = runs_root
    result = runner.invoke(app, ["runs", "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    runs = {r["name"]: r for r in json.loads(result.stdout)}
    assert runs["r-stopped"]["status"] == "stopped" and runs["r-stopped"]["resumable"]
    assert runs["r-failed"]["failure_kind"] == "nan"
    assert runs["r-finished"]["best_value"] == pytest.approx(results["finished"].best_value)
    assert runs["r-failed"]["last_value"] is None  # inf has no JSON spelling


def test_cli_runs_with_no_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["runs"])
    assert result.exit_code == 0 and "no runs" in result.stdout
    assert runner.invoke(app, ["runs", "--json"]).stdout.strip() == "[]"
    missing = runner.invoke(app, ["runs", "--root", "nowhere"])
    assert missing.exit_code == 2 and missing.stderr.startswith("error: --root nowhere")


def test_cli_export_by_name_under_runs(runs_copy, monkeypatch):
    root, _ = runs_copy
    monkeypatch.chdir(root.parent)
    result = runner.invoke(app, ["export", "r-stopped", "--csv"])
    assert result.exit_code == 0, result.output
    assert "(3 steps)" in result.stdout and "(3 epochs)" in result.stdout
    assert len(_read_csv(root / "r-stopped" / "metrics_steps.csv")) == 3
    out = root.parent / "exported"
    result = runner.invoke(app, ["export", str(root / "r-finished"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(_read_csv(out / "metrics_epochs.csv")) == 5


@pytest.mark.parametrize("arg", ["no-such-run", "{root}/notes", "{root}/r-finished/config.json"])
def test_cli_export_of_a_bad_run_is_one_line_and_exit_2(runs_root, arg):
    root, _ = runs_root
    result = runner.invoke(app, ["export", arg.format(root=root), "--csv"])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in lines[0]


def test_runs_and_system_import_neither_torch_nor_ui():
    code = ("import sys, tui_nn.runs, tui_nn.system, tui_nn.commands.runs_cmd;"
            "print([m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'textual', 'typer', 'rich', 'plotext')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent, check=True).stdout
    assert out.strip() == "[]"
