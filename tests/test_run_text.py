"""What a headless run says about where it runs (issue 31.7): `--compile` on the CPU is
documented and quiet, and a run's first line says how many processes train it (a real
two-process run's line: tests/test_distributed.py)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.commands.console import PlainReporter
from tui_nn.engine import events as ev

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}
    env.pop("WORLD_SIZE", None)
    return env


def test_compile_help_does_not_say_cuda_only():
    out = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    (row,) = [line for line in out.splitlines() if "--compile" in line]
    assert "on the CPU or CUDA" in row, row


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the warning is about a missing CUDA")
def test_compile_on_the_cpu_prints_no_cuda_home_warning(tmp_path):
    # A CUDA toolkit that is installed without a GPU is what made torch warn.
    res = subprocess.run(
        [sys.executable, "-m", "tui_nn", "train", "linear", "--compile", "--epochs", "1",
         "--headless", "--run-dir", str(tmp_path / "r")], capture_output=True, text=True,
        env=_env(CUDA_HOME=str(tmp_path)), timeout=300)
    assert res.returncode == 0, res.stderr
    assert "CUDA_HOME" not in res.stdout + res.stderr, res.stderr


def _started() -> ev.RunStarted:
    return ev.RunStarted(run_dir=None, model="m", dataset="d", device="cpu",
                         device_name="CPU (1 thread)", task="binary", metric="accuracy",
                         n_train=8, n_val=2, epochs=1, batch_size=4, steps_per_epoch=2,
                         total_steps=2, parameters=9)


def test_the_first_line_names_the_processes():
    for processes, said in ((1, "on CPU (1 thread):"), (2, "on 2 processes × CPU (1 thread):")):
        out = io.StringIO()
        PlainReporter(out, processes=processes)(_started())
        assert said in out.getvalue(), out.getvalue()
