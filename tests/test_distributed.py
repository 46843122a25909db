"""Data-parallel training through torchrun on the CPU (gloo): one run directory, the same loss
as one process with the same global batch, and resume."""

from __future__ import annotations

import os
import subprocess
import sys

import fastproc
import pytest

from tui_nn.engine.checkpoint import load_checkpoint
from tui_nn.engine.rundir import read_metrics

# Float sums are reduced in a different order across 2 ranks; anything above this is a bug.
TOLERANCE = 1e-5


def _tui_nn(*args: str) -> subprocess.CompletedProcess:
    """`python -m tui_nn train ARGS`, forked by fastproc (with --nproc-per-node, its torchrun
    agent still starts each rank as a fresh interpreter)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return fastproc.run(["train", *args], capture_output=True, text=True, env=env, timeout=300)


def _epochs(run_dir) -> list[dict]:
    return [r for r in read_metrics(run_dir) if r["type"] == "EpochMetrics"]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    """The README's `torchrun --standalone --nproc-per-node 2 -m tui_nn train ...`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "tui_nn", "train", *args], capture_output=True, text=True, env=env, timeout=300)


# One two-process run serves three claims (each gloo run costs three processes on a 2-core box):
# it matches one process, its first line says so, and torchrun itself resumes it.
@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process_and_resumes(tmp_path):
    common = ["diabetes", "--epochs", "2", "--batch-size", "32", "--seed", "0", "--headless"]
    single = _tui_nn(*common, "--run-dir", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    ddp = _tui_nn(*common, "--run-dir", str(tmp_path / "two"), "--nproc-per-node", "2")
    assert ddp.returncode == 0, ddp.stderr + ddp.stdout
    first = next(line for line in ddp.stdout.splitlines() if line.startswith("training "))
    assert " on 2 processes × CPU " in first, first

    # One run directory, written by rank 0 only: one RunStarted, one Finished.
    records = read_metrics(tmp_path / "two")
    assert [r["type"] for r in records].count("RunStarted") == 1
    assert records[-1]["type"] == "Finished" and records[-1]["status"] == "finished"
    assert sorted(p.name for p in (tmp_path / "two").iterdir()
                  if not p.name.startswith("events.out.tfevents")) == \
        [".lock", "best.pt", "config.json", "last.pt", "metrics.jsonl"]

    one, two = _epochs(tmp_path / "one"), _epochs(tmp_path / "two")
    assert len(one) == len(two) == 2
    for a, b in zip(one, two):
        assert abs(a["train_loss"] - b["train_loss"]) < TOLERANCE
        assert abs(a["val_loss"] - b["val_loss"]) < TOLERANCE
        assert a["value"] == b["value"]

    resumed = _torchrun("diabetes", "--resume", str(tmp_path / "two"), "--epochs", "3",
                        "--headless")
    assert resumed.returncode == 0, resumed.stderr[-2000:] + resumed.stdout[-2000:]
    assert len(_epochs(tmp_path / "two")) == 3
    assert read_metrics(tmp_path / "two")[-1]["status"] == "finished"
    assert load_checkpoint(tmp_path / "two")["epoch"] == 3
