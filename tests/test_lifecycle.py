"""The run lifecycle, with real processes: a run directory belongs to one run, best weights are
durable, resume works by directory, disk errors are reported in words, writes never follow
symlinks, and nothing a user trained is lost."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import fastproc
import pytest
import torch

from helpers import line_dataset
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.engine.checkpoint import CheckpointError, load_checkpoint
from tui_nn.engine.rundir import RunDir, RunDirError, read_metrics

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


# `python -m tui_nn ARGS` forked from a process that imported torch (tests/fastproc.py): each
# is a process of its own, as a user's second terminal would start, without the import second.
def _cli(*args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return fastproc.run(args, capture_output=True, text=True, env=ENV, cwd=cwd, timeout=timeout)


def _start(*args: str) -> fastproc.Proc:
    return fastproc.popen(args, stdout=fastproc.PIPE, stderr=fastproc.PIPE, env=ENV)


def _wait_for(run_dir: Path, proc: fastproc.Proc, text: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists() and text in metrics.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited early: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    raise AssertionError(f"never saw {text}")


def _strict_records(run_dir: Path) -> list[dict]:
    text = (run_dir / "metrics.jsonl").read_text()
    assert text == "" or text.endswith("\n"), "metrics.jsonl ends in a torn line"
    return [json.loads(line) for line in text.splitlines()]


# ---- a run directory belongs to one run ----------------------------------------------------
def test_reusing_a_run_dir_is_refused_and_leaves_the_run_untouched(tmp_path):
    run = tmp_path / "r1"
    first = _cli("train", "diabetes", "--epochs", "2", "--headless", "--run-dir", str(run))
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    again = _cli("train", "diabetes", "--epochs", "1", "--lr", "0.5", "--headless",
                 "--run-dir", str(run))
    assert again.returncode == 2
    assert f"--resume {run}" in again.stderr and "new --run-dir" in again.stderr
    assert again.stderr.count("\n") == 1 and "Traceback" not in again.stderr
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after == before


def test_a_folder_with_a_foreign_config_json_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"mine": true}\n')
    res = _cli("train", "linear", "--epochs", "1", "--headless", "--run-dir", ".", cwd=tmp_path)
    assert res.returncode == 2 and "already holds a run" in res.stderr
    assert (tmp_path / "config.json").read_text() == '{"mine": true}\n'


def test_a_second_process_on_a_live_run_is_refused_naming_the_pid(tmp_path):
    run = tmp_path / "live"
    proc = _start("train", "curve", "--epochs", "100000", "--headless", "--run-dir", str(run))
    try:
        _wait_for(run, proc, '"StepMetrics"')
        res = _cli("train", "--resume", str(run), "--headless")
        assert res.returncode == 2, res.stderr
        assert f"process {proc.pid}" in res.stderr
        res = _cli("train", "curve", "--headless", "--run-dir", str(run))  # a new run there
        assert res.returncode == 2 and f"process {proc.pid}" in res.stderr, res.stderr
        # The same refusal from the engine itself (two Trainers racing for a fresh directory).
        with pytest.raises(RunDirError, match=f"process {proc.pid}"):
            RunDir.reopen(run)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    records = _strict_records(run)
    assert sum(r["type"] == "RunStarted" for r in records) == 1


def test_the_lock_is_released_by_the_kernel_on_kill_9(tmp_path):
    run = tmp_path / "k"
    proc = _start("train", "curve", "--epochs", "100000", "--headless", "--run-dir", str(run))
    _wait_for(run, proc, '"StepMetrics"')
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    RunDir.reopen(run).close()  # no one holds it any more


# ---- durable best weights and step-0 checkpoints ---------------------------------------------
def test_best_pt_is_on_disk_before_the_next_epoch_starts(tmp_path):
    seen: list[tuple[int, float]] = []

    def on_event(e: ev.Event) -> None:
        if isinstance(e, ev.StepMetrics) and e.epoch >= 1 and len(seen) < e.epoch:
            best = torch.load(tmp_path / "b" / "best.pt", weights_only=True)
            seen.append((best["epoch"], best["best_value"]))

    trainer = Trainer(TrainConfig("linear", epochs=4, lr=0.01, report_interval_s=0.0,
                                  run_dir=str(tmp_path / "b")), on_event, dataset=line_dataset())
    trainer.run()
    epochs = [e for e in trainer.history]
    assert [epoch for epoch, _ in seen] == [1, 2, 3]
    for (epoch, value), em in zip(seen, epochs):
        assert value == pytest.approx(em.best_value)


def test_every_run_is_resumable_from_step_0(tmp_path):
    events: list[ev.Event] = []
    Trainer(TrainConfig("linear", epochs=1, run_dir=str(tmp_path / "z")), events.append,
            dataset=line_dataset()).run()
    saves = [e for e in events if isinstance(e, ev.CheckpointSaved)]
    assert saves[0].reason == "start" and saves[0].step == 0


def test_a_resumed_run_that_never_beats_the_old_best_keeps_best_pt(tmp_path):
    run = tmp_path / "keep"
    Trainer(TrainConfig("linear", epochs=30, lr=0.01, run_dir=str(run)),
            dataset=line_dataset()).run()
    best = (run / "best.pt").read_bytes()
    # lr 0.5 diverges: no epoch of the resumed session is better.
    result = Trainer(TrainConfig("linear", epochs=33, lr=0.5), dataset=line_dataset(),
                     resume_from=run).run()
    assert isinstance(result, ev.Failed) or result.best_value is not None
    assert (run / "best.pt").read_bytes() == best


def test_nan_with_no_periodic_checkpoint_keeps_the_finite_step_0_weights(tmp_path):
    """train linear --epochs 2000 --lr 0.2 used to leave only the diverged weights."""
    run = tmp_path / "nan"
    result = Trainer(TrainConfig("linear", epochs=2000, lr=0.2, run_dir=str(run)),
                     dataset=line_dataset()).run()
    assert isinstance(result, ev.Failed) and result.kind == "nan"
    ckpt = load_checkpoint(run)
    w = torch.cat([t.flatten() for t in ckpt["model"].values()])
    assert torch.isfinite(w).all() and w.abs().max() < 100
    assert f"(step {ckpt['step']})" in result.message


# ---- resume by directory ---------------------------------------------------------------------
def test_readme_resume_line_continues_a_stopped_run_without_naming_the_model(tmp_path):
    run = tmp_path / "s"
    proc = _start("train", "diabetes", "--epochs", "100000", "--headless", "--run-dir", str(run),
                  "--checkpoint-every", "5")
    _wait_for(run, proc, '"StepMetrics"')
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert f"tui-nn train --resume {run} --headless" in err.decode()
    stopped_at = load_checkpoint(run)["step"]
    res = _cli("train", "--resume", str(run), "--headless", "--epochs",
               str(load_checkpoint(run)["epoch"] + 2))
    assert res.returncode == 0, res.stderr
    records = _strict_records(run)
    starts = [r for r in records if r["type"] == "RunStarted"]
    assert len(starts) == 2 and starts[1]["start_step"] == stopped_at
    assert starts[1]["model"] == "diabetes" and "epochs" in starts[1]["changes"]


@pytest.fixture(scope="module")
def finished_linear_run(tmp_path_factory) -> Path:
    """One finished 2-epoch CLI run; each test resumes its own copy (training it per case
    was a CLI process each, seconds apiece)."""
    run = tmp_path_factory.mktemp("finished") / "f"
    assert _cli("train", "linear", "--epochs", "2", "--headless", "--run-dir",
                str(run)).returncode == 0
    return run


@pytest.mark.parametrize("args,fragment", [
    (["cnn"], "MODEL cnn (the run has linear)"),
    (["--dataset", "curve"], "--dataset curve"),
    (["--batch-size", "7"], "--batch-size 7"),
    ([], "is finished (2 epochs)"),
    (["--epochs", "2"], "--epochs N"),
])
def test_resume_refuses_what_it_cannot_change(finished_linear_run, tmp_path, args, fragment):
    run = tmp_path / "f"
    shutil.copytree(finished_linear_run, run)
    size = (run / "metrics.jsonl").stat().st_size
    model = [a for a in args if not a.startswith("-") and not a.isdigit() and a != "curve"]
    rest = [a for a in args if a not in model]
    res = _cli("train", *model, "--resume", str(run), "--headless", *rest)
    assert res.returncode == 2, res.stderr
    assert fragment in res.stderr and "Traceback" not in res.stderr
    assert (run / "metrics.jsonl").stat().st_size == size  # nothing appended


def test_resume_applies_a_new_lr_and_records_it(tmp_path):
    run = tmp_path / "lr"
    Trainer(TrainConfig("linear", epochs=1, lr=0.01, run_dir=str(run)),
            dataset=line_dataset()).run()
    events: list[ev.Event] = []
    trainer = Trainer(TrainConfig("linear", epochs=2, lr=0.005), events.append,
                      dataset=line_dataset(), resume_from=run)
    trainer.run()
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    assert started.changes == {"epochs": [1, 2], "lr": [0.01, 0.005]}
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(tmp_path):
    run = tmp_path / "early"
    Trainer(TrainConfig("linear", epochs=1, run_dir=str(run)), dataset=line_dataset()).run()
    for name in ("last.pt", "best.pt", "metrics.jsonl"):
        (run / name).unlink()  # what a kill between config.json and step 0 leaves
    result = Trainer(TrainConfig("linear", epochs=2), dataset=line_dataset(),
                     resume_from=run).run()
    assert isinstance(result, ev.Finished) and result.epochs_done == 2


def test_resume_accepts_best_pt_and_config_json_as_the_run(tmp_path):
    run = tmp_path / "b"
    Trainer(TrainConfig("linear", epochs=1, run_dir=str(run)), dataset=line_dataset()).run()
    for given in (run / "best.pt", run / "config.json"):
        res = _cli("train", "--resume", str(given), "--headless", "--epochs",
                   str(load_checkpoint(run)["epoch"] + 1))
        assert res.returncode == 0, res.stderr


def test_checkpoint_loading_says_what_the_file_is(tmp_path):
    run = tmp_path / "c"
    Trainer(TrainConfig("linear", epochs=1, run_dir=str(run)), dataset=line_dataset()).run()
    with pytest.raises(CheckpointError, match="best.pt.*--resume"):
        load_checkpoint(run / "best.pt")
    with pytest.raises(CheckpointError, match="it is not one"):
        load_checkpoint(run / "config.json")
    (tmp_path / "passwd.pt").symlink_to("/etc/passwd")
    with pytest.raises(CheckpointError, match="symlink"):
        load_checkpoint(tmp_path / "passwd.pt")
    data = (run / "last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(tmp_path / "cut.pt")


# ---- disk and files ----------------------------------------------------------------------------
@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "full"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)],
                         capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def test_disk_full_on_a_checkpoint_is_kind_disk_with_the_path_and_free_space(tiny_tmpfs):
    run = tiny_tmpfs / "run"
    res = _cli("train", "mlp", "--epochs", "1", "--headless", "--run-dir", str(run))
    assert res.returncode == 1
    assert "no space left on device writing" in res.stderr.lower()
    assert str(run / "last.pt") in res.stderr and " free)" in res.stderr
    assert "Traceback" not in res.stderr and "enforce fail" not in res.stderr
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    records = _strict_records(run)
    assert records[-1]["type"] == "Failed" and records[-1]["kind"] == "disk"


def test_a_short_metrics_write_is_cut_back_and_fails_the_run(tmp_path, monkeypatch):
    run = tmp_path / "m"
    real_write = os.write
    calls = {"n": 0}

    def failing_write(fd, data):
        if os.fstat(fd).st_ino == (run / "metrics.jsonl").stat().st_ino:
            calls["n"] += 1
            if calls["n"] == 4:  # half a line, then the disk is full
                real_write(fd, bytes(data[: len(data) // 2]))
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    result = Trainer(TrainConfig("linear", epochs=50, run_dir=str(run)),
                     dataset=line_dataset()).run()
    monkeypatch.undo()
    assert isinstance(result, ev.Failed) and result.kind == "disk"
    assert "metrics.jsonl" in result.message and "is intact" in result.message
    records = _strict_records(run)  # whole lines only
    assert records[-1]["type"] == "Failed"
    # A resumed session's RunStarted starts on its own line.
    Trainer(TrainConfig("linear", epochs=60), dataset=line_dataset(), resume_from=run).run()
    assert sum(r["type"] == "RunStarted" for r in _strict_records(run)) == 2


def test_a_torn_last_line_is_cut_before_a_resume_appends(tmp_path):
    run = tmp_path / "t"
    Trainer(TrainConfig("linear", epochs=1, run_dir=str(run)), dataset=line_dataset()).run()
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b'{"type":"StepMet')
    Trainer(TrainConfig("linear", epochs=2), dataset=line_dataset(), resume_from=run).run()
    assert sum(r["type"] == "RunStarted" for r in _strict_records(run)) == 2


def test_writes_never_follow_symlinks(tmp_path):
    run = tmp_path / "s"
    Trainer(TrainConfig("linear", epochs=1, run_dir=str(run)), dataset=line_dataset()).run()
    other = tmp_path / "other.txt"
    other.write_text("precious\n")
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(other)
    result = Trainer(TrainConfig("linear", epochs=2), dataset=line_dataset(),
                     resume_from=run).run()
    assert isinstance(result, ev.Failed) and result.kind == "disk"
    assert "symlink" in result.message
    assert other.read_text() == "precious\n"
    # Exports write through a unique temp file too: a planted temp-name link is not followed.
    run2 = tmp_path / "e"
    Trainer(TrainConfig("linear", epochs=1, run_dir=str(run2)), dataset=line_dataset()).run()
    (run2 / ".metrics_steps.csv.tmp").symlink_to(other)
    assert _cli("export", str(run2), "--csv").returncode == 0
    assert other.read_text() == "precious\n"


def test_stale_temp_files_are_removed_when_a_run_resumes(tmp_path):
    run = tmp_path / "st"
    Trainer(TrainConfig("linear", epochs=1, run_dir=str(run)), dataset=line_dataset()).run()
    stale = run / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    Trainer(TrainConfig("linear", epochs=2), dataset=line_dataset(), resume_from=run).run()
    assert not stale.exists()


def test_tensorboard_errors_disable_it_with_one_warning(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tui_nn.engine import tensorboard as tb

    def broken(self, event):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tb.TensorBoardSink, "_write", broken)
    events: list[ev.Event] = []
    result = Trainer(TrainConfig("linear", epochs=3, run_dir=str(tmp_path / "tb")),
                     events.append, dataset=line_dataset()).run()
    assert isinstance(result, ev.Finished)
    notices = [e for e in events if isinstance(e, ev.Notice)]
    assert len(notices) == 1 and "TensorBoard" in notices[0].message


def test_runs_calls_a_run_interrupted_only_when_resume_can_continue_it(tmp_path):
    from tui_nn.runs import read_run_info
    ok = tmp_path / "ok"
    Trainer(TrainConfig("linear", epochs=1, run_dir=str(ok)), dataset=line_dataset()).run()
    records = read_metrics(ok)
    # Killed mid-run: drop the Finished record.
    (ok / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[:-1]))
    assert read_run_info(ok, check_writers=False, live_window_s=0).status == "interrupted"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metrics.jsonl").write_text('{"type":"RunStarted","model":"x"}\n')
    info = read_run_info(empty, check_writers=False, live_window_s=0)
    assert info.status != "interrupted" and not info.resumable


def test_the_run_records_measured_memory_beside_what_inspect_predicts(tmp_path):
    """config.json holds what one training forward really saved; `inspect --batch-size`
    predicts the same figure for the same model and batch."""
    from helpers import blobs_images
    from tui_nn.shapes import inspect_model
    from tui_nn.shapes.memory import MemoryRequest
    from tui_nn.zoo import get_model_spec

    run = tmp_path / "mem"
    Trainer(TrainConfig("cnn", epochs=1, batch_size=16, run_dir=str(run)),
            dataset=blobs_images(n_train=64, n_val=16)).run()
    measured = json.loads((run / "config.json").read_text())["memory_measured"]
    assert measured["batch_size"] == 16 and measured["rss_bytes"] > 0
    predicted = inspect_model(get_model_spec("cnn").build(), [(1, 28, 28)],
                              memory=MemoryRequest(batch_size=16, optimizer="sgd")).memory
    assert predicted is not None
    # The run's measurement includes the loss; the prediction counts the model's forward.
    assert abs(measured["saved_activation_bytes"] - predicted.activations) \
        <= 0.1 * predicted.activations
