"""Kill headless training at random moments (SIGKILL, also mid checkpoint write): every run
resumes, every metrics.jsonl parses, at most one checkpoint interval of work is lost. SIGTERM
and SIGHUP leave a checkpoint of the exact step."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import fastproc
import pytest

from tui_nn.engine.checkpoint import load_checkpoint

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


# Each trainer is forked from a process that has imported torch (tests/fastproc.py): it reaches
# its first step in a fraction of a second, so the kills land in training and checkpoint
# writes rather than in interpreter start-up, and the dozens of starts cost little.
def _train(run_dir: Path, *extra: str) -> fastproc.Proc:
    cmd = ["train", "curve", "--headless", "--run-dir", str(run_dir), "--checkpoint-every", "1",
           *extra]
    return fastproc.popen(cmd, stdout=fastproc.PIPE, stderr=fastproc.PIPE, env=ENV)


def _resume(run_dir: Path, *extra: str) -> fastproc.Proc:
    cmd = ["train", "curve", "--headless", "--resume", str(run_dir), "--checkpoint-every", "1",
           *extra]
    return fastproc.popen(cmd, stdout=fastproc.PIPE, stderr=fastproc.PIPE, env=ENV)


def _records(run_dir: Path) -> list[dict]:
    """Strict: every line must be complete JSON."""
    text = (run_dir / "metrics.jsonl").read_text()
    assert text == "" or text.endswith("\n"), "metrics.jsonl ends in a torn line"
    return [json.loads(line) for line in text.splitlines()]


def _last_logged_step(records: list[dict]) -> int:
    steps = [r["step"] for r in records if r["type"] in ("StepMetrics", "CheckpointSaved")
             and r.get("step") is not None]
    return max(steps, default=0)


def _wait_for_steps(run_dir: Path, proc: fastproc.Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists() and '"StepMetrics"' in metrics.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited early: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    raise AssertionError("trainer never reported a step")


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_more_than_one_interval(tmp_path):
    rng = random.Random(1234)
    run_dir = tmp_path / "run"
    proc = _train(run_dir, "--epochs", "100000")
    _wait_for_steps(run_dir, proc)
    kills = 0
    while kills < 20:
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        records = _records(run_dir)
        ckpt = load_checkpoint(run_dir / "last.pt")
        # Checkpoints every step: the checkpoint is at most one step behind what was logged.
        assert ckpt["step"] >= _last_logged_step(records) - 1
        proc = _resume(run_dir)
        _wait_for_steps(run_dir, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ckpt = load_checkpoint(run_dir / "last.pt")
    final = _resume(run_dir, "--epochs", str(ckpt["epoch"] + 3))
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    records = _records(run_dir)
    assert records[-1]["type"] == "Finished" and records[-1]["status"] == "finished"
    assert records[-1]["epochs_done"] == ckpt["epoch"] + 3


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_sigterm_sighup_and_ctrl_c_checkpoint_the_exact_step(tmp_path, sig):
    run_dir = tmp_path / "run"
    proc = _train(run_dir, "--epochs", "100000")
    _wait_for_steps(run_dir, proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err.decode()
    assert b"Traceback" not in err
    finished = _records(run_dir)[-1]
    assert finished["type"] == "Finished" and finished["status"] == "stopped"
    ckpt = load_checkpoint(run_dir / "last.pt")
    assert ckpt["step"] == finished["step"]
    assert b"checkpoint saved" in out


@pytest.mark.slow
def test_sigkill_in_the_first_epoch_leaves_a_run_that_resumes_or_is_not_called_resumable(tmp_path):
    """Kills from the first moments of a run on: either the run has its config and step-0
    checkpoint and --resume continues it, or `runs` does not offer it for resuming."""
    from tui_nn.runs import read_run_info

    rng = random.Random(7)
    for k in range(6):
        run_dir = tmp_path / f"early{k}"
        proc = _train(run_dir, "--epochs", "100000")
        time.sleep(rng.uniform(0.0, 1.2))  # a forked start-up (data, model) takes ~0.3 s
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        info = read_run_info(run_dir, check_writers=False, live_window_s=0) \
            if run_dir.exists() else None
        if info is None or not info.resumable:
            assert info is None or info.status != "interrupted"
            continue
        assert (run_dir / "last.pt").exists() or (run_dir / "config.json").exists()
        proc = _resume(run_dir)
        _wait_for_steps(run_dir, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _records(run_dir)  # whole lines only


@pytest.mark.slow
def test_sigkill_during_best_pt_writes_never_loses_the_best_weights(tmp_path):
    """curve improves almost every epoch, so best.pt is rewritten all the time: kills land
    during those writes. best.pt always loads, holds the best value logged before the kill
    (it is written before its epoch's record), and no temp file outlives a resume."""
    import torch

    rng = random.Random(99)
    run_dir = tmp_path / "best"
    proc = _train(run_dir, "--epochs", "100000")
    _wait_for_steps(run_dir, proc)
    for _ in range(8):
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        records = _records(run_dir)
        best_logged = [r for r in records if r["type"] == "EpochMetrics" and r["is_best"]]
        if best_logged:
            best = torch.load(run_dir / "best.pt", weights_only=True)
            assert best["best_value"] <= best_logged[-1]["value"] + 1e-12
        sessions = sum(r["type"] == "RunStarted" for r in records)
        proc = _resume(run_dir)
        _wait_for_session(run_dir, proc, sessions + 1)
        # The resume took the lock and removed what the killed writer left behind (a temp
        # file can only be the new session's own, being written right now).
        leftovers = [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
        assert len(leftovers) <= 1
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _wait_for_session(run_dir: Path, proc: fastproc.Proc, sessions: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = (run_dir / "metrics.jsonl").read_text()
        if text.count('"RunStarted"') >= sessions:
            return
        if proc.poll() is not None:
            raise AssertionError(f"trainer exited early: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    raise AssertionError("the resumed session never started")
