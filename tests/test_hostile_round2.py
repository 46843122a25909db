"""Hostile input, round two (issue 26): strings made inert where records are decoded, huge
finite values drawn clipped, the TensorBoard reader range-checked, `--resume` through the
bounded readers, metrics.jsonl strict JSON and a run directory's owner and mode checked."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import fastproc
import pytest

from hostile import CLEAR, ESC_TITLE, good_run, inert, record, started
from tui_nn.engine import schema
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
    event = schema.decode(raw)
    assert inert(event.model) and inert(event.metric)
    assert all(inert(k) and inert(v[0]) for k, v in event.changes.items())
    failed = schema.decode({"type": "Failed", "message": f"boom\n{ESC_TITLE}",
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
    from tui_nn.tui.screens.watch import WatchApp
    from tui_nn.tui.widgets.curves import LossPlot, MetricPlot

    run = _huge_run(tmp_path / "run")

    async def scenario():
        app = WatchApp(run)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.watch_screen
            await wait_for(pilot, lambda: screen.status == "finished", 15, "finished")
            await pilot.pause(0.5)
            app.export_screenshot()
            loss, metric = app.screen.query_one(LossPlot), app.screen.query_one(MetricPlot)
            assert app.is_running and loss.redraws and loss.clipped
            assert metric.redraws and metric.clipped  # an accuracy of 1e308: drawn at 100 %

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


# ---- 4: the TensorBoard reader ---------------------------------------------------------------
def _tb_log(path: Path, walltime: float | None = None, steps: int = 5) -> Path:
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(path)) as w:
        for s in range(steps):
            w.add_scalar("val/loss", 0.5 / (s + 1), s, walltime=walltime)
    return path


def test_a_walltime_of_1e300_does_not_break_runs_json(tmp_path):
    from tui_nn.commands.runs_cmd import run_runs

    _tb_log(tmp_path / "tb" / "exp", walltime=1e300)
    good_run(tmp_path / "tb" / "good")
    out = io.StringIO()
    assert run_runs(str(tmp_path / "tb"), as_json=True, out=out) == 0
    listed = {r["name"]: r for r in json.loads(out.getvalue())}
    assert set(listed) == {"exp", "good"} and listed["exp"]["best_value"] == pytest.approx(0.1)
    assert listed["exp"]["duration_s"] is None  # no usable wall time: no duration


def test_a_bad_checksum_is_said_not_shown_as_fewer_tags(tmp_path):
    from tui_nn.runs import tensorboard as tb

    log = _tb_log(tmp_path / "exp")
    path = tb.event_files(log)[0]
    data = bytearray(path.read_bytes())
    data[-6] ^= 0xFF  # inside the last record's data: its CRC no longer matches
    path.write_bytes(bytes(data))
    info = read_run_info(log)
    assert "bad checksum" in (info.message or "") and info.steps_done == 3
    summary, problem = tb.summarize(log, use_cache=False)
    assert "bad checksum" in problem


def test_a_listing_reads_an_event_file_once_and_a_grown_one_from_where_it_stopped(
        tmp_path, monkeypatch):
    from tui_nn.runs import tensorboard as tb

    monkeypatch.setenv("TUI_NN_CACHE", str(tmp_path / "cache"))
    log = _tb_log(tmp_path / "exp", steps=50)
    read = []
    original = tb.EventRecords.__iter__

    def counting(self):
        for event in original(self):
            read.append(event)
            yield event
    monkeypatch.setattr(tb.EventRecords, "__iter__", counting)
    first, _ = tb.summarize(log)
    assert len(read) == 51  # the file-version event and 50 scalars
    again, _ = tb.summarize(log)
    assert len(read) == 51 and again.tags == first.tags and again.max_step == 49
    path = tb.event_files(log)[0]
    extra = _tb_log(tmp_path / "more", steps=60)  # the same writer's records, appended
    more = tb.event_files(extra)[0].read_bytes()
    cut = len(tb.event_files(_tb_log(tmp_path / "fifty", steps=50))[0].read_bytes())
    with open(path, "ab") as f:
        f.write(more[cut:])
    read.clear()
    grown, _ = tb.summarize(log)
    assert len(read) == 10 and grown.max_step == 59 and grown.tags["val/loss"].count == 60
    (tmp_path / "cache" / tb.SummaryCache.FILE).write_text('{"version":1,"files":{"x":[1e999')
    assert tb.summarize(log)[0].max_step == 59  # a damaged cache is an empty one


# ---- 5: --resume reads the run directory as the app does -------------------------------------
def _resumable(path: Path, metrics: str | None = "") -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model": "mlp", "dataset": "digits",
                                                  "epochs": 2}))
    if metrics is not None:
        (path / "metrics.jsonl").write_text(metrics)
    return path


@pytest.mark.parametrize("epoch", ["1e400", '"abc"', "-1.5"])
def test_resume_refuses_a_checkpoint_record_it_cannot_read(tmp_path, epoch):
    from tui_nn.engine.config import ConfigError
    from tui_nn.engine.resume import check_resume

    run = _resumable(tmp_path / "r", '{"type":"CheckpointSaved","path":"last.pt","step":1,'
                                     f'"epoch":{epoch},"reason":"epoch"}}\n')
    with pytest.raises(ConfigError, match="line 1: a CheckpointSaved record whose epoch is"):
        check_resume(run, {})


def test_resume_never_waits_on_a_fifo_nor_reads_dev_zero(tmp_path):
    from tui_nn.engine.config import ConfigError
    from tui_nn.engine.resume import check_resume

    fifo = _resumable(tmp_path / "fifo", None)
    os.mkfifo(fifo / "metrics.jsonl")  # reading or appending it would wait for a writer
    with pytest.raises(ConfigError, match="not a regular file"):
        check_resume(fifo, {})
    zero = _resumable(tmp_path / "zero")
    (zero / "config.json").unlink()
    os.symlink("/dev/zero", zero / "config.json")  # read_text would never end
    with pytest.raises(ConfigError, match="symlink"):
        check_resume(zero, {})


def test_cli_resume_of_a_damaged_record_is_one_line_exit_2(tmp_path):
    run = _resumable(tmp_path / "r", '{"type":"CheckpointSaved","path":"last.pt","step":1,'
                                     '"epoch":1e400,"reason":"epoch"}\n')
    os.mkfifo(tmp_path / "fifo-run")  # unrelated: nothing else in the directory is read
    out = fastproc.run(["train", "--resume", str(run), "--headless"], capture_output=True,
                       text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr and "epoch is Infinity" in lines[0]


# ---- 9: the files of a run ---------------------------------------------------------------------
STRICT = {"parse_constant": lambda token: (_ for _ in ()).throw(ValueError(token))}


def test_metrics_jsonl_is_strict_json_and_both_spellings_read_the_same(tmp_path):
    from tui_nn.engine.rundir import RunDir, read_metrics

    run = RunDir(tmp_path / "new")
    base = {**started(), "run_dir": None}
    for rec in (base,
                dict(type="StepMetrics", epoch=0, step=2, first_step=1,
                     losses=[1.0, math.nan], lr=0.1, samples_per_s=1.0, eta_s=math.inf,
                     epoch_step=2, steps_per_epoch=2, total_steps=2,
                     scalars={"d_loss": -math.inf}),
                dict(type="EpochMetrics", epoch=0, step=2, train_loss=math.nan,
                     val_loss=math.inf, metric="mse", value=math.inf, best_value=math.inf,
                     is_best=True, elapsed_s=1.0, epoch_time_s=1.0, samples_per_s=1.0)):
        run.append_metrics(rec)
    run.close()
    text = (tmp_path / "new" / "metrics.jsonl").read_text()
    for line in text.splitlines():
        json.loads(line, **STRICT)  # no bare NaN/Infinity token
    assert '"NaN"' in text and '"Infinity"' in text and '"-Infinity"' in text
    old = tmp_path / "old"
    old.mkdir()
    (old / "metrics.jsonl").write_text(text.replace('"NaN"', "NaN").replace(
        '"-Infinity"', "-Infinity").replace('"Infinity"', "Infinity"))
    for path in (tmp_path / "new", old):
        recs = read_metrics(path)
        step = schema.decode(recs[1])
        assert math.isnan(step.losses[1]) and step.eta_s == math.inf
        assert step.scalars == {"d_loss": -math.inf}
        hist = load_history(path)
        assert math.isnan(hist.losses[1]) and hist.epochs[0].value == math.inf


def test_one_permission_rule_for_a_runs_files(tmp_path):
    import stat

    from tui_nn.engine.rundir import RunDir

    run = RunDir.create(tmp_path / "r")
    run.write_config({"model": "mlp"})
    run.append_metrics(started())
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "r").iterdir()}
    run.close()
    assert modes == {"config.json": 0o600, "metrics.jsonl": 0o600, ".lock": 0o600}


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_run_dir_of_another_user_or_writable_by_all_is_refused(tmp_path):
    from tui_nn.engine.config import ConfigError
    from tui_nn.engine.resume import check_resume
    from tui_nn.engine.rundir import RunDir, RunDirError

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 4242, 4242)
    with pytest.raises(RunDirError, match="owned by another user"):
        RunDir.create(theirs)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(RunDirError, match="writable by every user"):
        RunDir.create(shared)
    run = _resumable(tmp_path / "run")
    os.chmod(run, 0o777)
    with pytest.raises((RunDirError, ConfigError), match="writable by every user"):
        check_resume(run, {})
    with pytest.raises(RunDirError, match="writable by every user"):
        RunDir.reopen(run)


def test_runs_started_in_the_same_second_each_get_their_own_directory(tmp_path):
    import subprocess
    import sys
    import time

    start = time.time() + 2.0
    code = ("import sys, time\n"
            "from tui_nn.engine.rundir import RunDir\n"
            f"time.sleep(max(0, {start} - time.time()))\n"
            "run = RunDir.new(sys.argv[1], 'mlp', 'digits')\n"
            "print(run.path, flush=True)\n"
            "time.sleep(1.0)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    paths = [out.strip() for out, _ in outs]
    assert len(set(paths)) == 3 and all(Path(p).is_dir() for p in paths)


def test_a_new_run_never_claims_the_directory_another_process_just_made(tmp_path, monkeypatch):
    import time

    from tui_nn.engine.rundir import RunDir

    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20250101-120000")  # one second
    other = RunDir.new(tmp_path, "mlp", "digits")
    # The other process made its directory after this one looked and before it claimed: what
    # a check of existence saw no longer holds; only mkdir's answer does.
    monkeypatch.setattr(Path, "exists", lambda self: False)
    monkeypatch.setattr(Path, "is_symlink", lambda self: False)
    mine = RunDir.new(tmp_path, "mlp", "digits")
    monkeypatch.undo()
    assert mine.path != other.path and mine.path.name.endswith("-2")
    mine.close()
    other.close()


def test_a_fifo_planted_as_the_lock_blocks_nothing(tmp_path):
    from tui_nn.engine.resume import check_resume
    from tui_nn.engine.rundir import RunDir, RunDirError, lock_holder, lock_is_held

    run = _resumable(tmp_path / "r")
    os.mkfifo(run / ".lock")
    assert lock_is_held(run) is False and lock_holder(run) is None
    check_resume(run, {})
    with pytest.raises(RunDirError, match="not a regular file"):
        RunDir.reopen(run)
