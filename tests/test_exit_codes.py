"""The README's exit-code table (issue 31.6), held: each example it gives is run here and
exits with its row's code; the same kind of mistake always gets the same code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastproc
import pytest
import torch
from typer.testing import CliRunner

from tui_nn.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()

TEN_OUTPUTS = '''
from torch import nn

class Ten(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 10)
    def forward(self, x):
        return self.fc(x)
'''


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    d = tmp_path_factory.mktemp("codes")
    (d / "three.csv").write_text("1,2,3,0\n4,5,6,1\n1,1,1,0\n2,2,2,1\n3,3,3,0\n")
    (d / "ten.py").write_text(TEN_OUTPUTS)
    (d / "notarun").mkdir()
    (d / "damaged").mkdir()
    (d / "damaged" / "last.pt").write_bytes(b"not a checkpoint")
    done = runner.invoke(app, ["train", "linear", "--epochs", "1", "--headless",
                               "--run-dir", str(d / "done")])
    assert done.exit_code == 0, done.output  # row 0: a run that finished
    return d


# (README example, arguments, code, a fragment of the one-line message)
CASES = [
    ("the check passed", ["inspect", "lenet", "--input", "1x32x32"], 0, ""),
    ("the loss became NaN/inf", ["train", "linear", "--epochs", "2000", "--lr", "0.2",
                                 "--headless", "--run-dir", "{d}/nan"], 1, "loss became"),
    ("inspect found a shape mismatch", ["inspect", "lenet", "--input", "1x28x28"], 1, "✗"),
    ("control: the run is not training", ["control", "{d}/done", "pause"], 1, "finished"),
    ("runs: a HOST:PATH root could not be read", ["runs", "nohost.invalid:/x", "{d}"], 1,
     "nohost.invalid"),
    ("an unknown flag", ["train", "linear", "--nope"], 2, "--nope"),
    ("an unknown value", ["train", "linear", "--optimizer", "sgdd", "--headless"], 2, "sgdd"),
    ("an unknown model", ["train", "cnnn", "--headless"], 2, "Did you mean 'cnn'"),
    ("an unknown dataset", ["train", "cnn", "--dataset", "digitz", "--headless"], 2, "digits"),
    ("a missing CSV", ["train", "diabetes", "--dataset", "{d}/missing.csv", "--headless"], 2,
     "missing.csv"),
    ("a missing image folder", ["train", "cnn", "--dataset", "folder:{d}/nope", "--headless"],
     2, "nope"),
    ("a CSV with other features than the model takes",
     ["train", "diabetes", "--dataset", "{d}/three.csv", "--headless"], 2, "expects input 8"),
    ("a wrong output head", ["train", "{d}/ten.py:Ten", "--dataset", "diabetes", "--headless"],
     2, "binary"),
    ("a --run-dir that holds a run", ["train", "linear", "--headless", "--run-dir", "{d}/done"],
     2, "--resume"),
    ("--resume of something that is not a run",
     ["train", "--resume", "{d}/notarun", "--headless"], 2, "no checkpoint"),
    ("--resume of a damaged checkpoint",
     ["train", "linear", "--resume", "{d}/damaged/last.pt", "--headless"], 2, "checkpoint"),
    ("--device cuda without CUDA", ["train", "linear", "--device", "cuda", "--headless"], 2,
     "CUDA is not available"),
    ("--amp bf16 on the CPU", ["train", "linear", "--amp", "bf16", "--device", "cpu",
                               "--headless"], 2, "needs a CUDA device"),
]


@pytest.mark.parametrize("example,args,code,fragment", CASES, ids=[c[0] for c in CASES])
def test_each_documented_exit_code(made, tmp_path, monkeypatch, example, args, code, fragment):
    if "cuda" in example.lower() and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [a.replace("{d}", str(made)) for a in args])
    assert result.exit_code == code, result.output
    assert fragment in result.output, result.output
    assert "Traceback" not in result.output
    if code == 2 and args[0] == "train":
        assert not (tmp_path / "runs").exists()  # nothing ran, nothing was left behind
        assert len([ln for ln in result.output.splitlines() if ln.startswith("error:")]) <= 1


@pytest.mark.slow
def test_an_input_error_under_torchrun_is_still_2(made, tmp_path):
    """`--nproc-per-node 2` used to turn a rank's exit 2 into torchrun's failure, exit 1."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    res = subprocess.run(
        [sys.executable, "-m", "tui_nn", "train", "diabetes", "--dataset",
         str(made / "three.csv"), "--epochs", "1", "--headless", "--nproc-per-node", "2",
         "--run-dir", str(tmp_path / "r")], capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "expects input 8" in res.stderr and "Traceback" not in res.stderr


def test_a_signal_exits_128_plus_its_number(tmp_path):
    run = tmp_path / "r"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = fastproc.popen(["train", "diabetes", "--epochs", "100000", "--headless", "--run-dir",
                           str(run)], stdout=fastproc.PIPE, stderr=fastproc.PIPE, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        metrics = run / "metrics.jsonl"
        if metrics.exists() and '"StepMetrics"' in metrics.read_text():
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()
    assert "continue with: tui-nn train --resume" in err.decode()


def test_the_readme_table_has_the_four_rows_and_each_example_run_here():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Exit codes", 1)[1].split("\n\n", 2)[2].split("\n\n", 1)[0]
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")]
    assert rows[2:] == ["0", "1", "2", "128+n"]  # after the header and its rule
    assert "tests/test_exit_codes.py" in readme
    said = table.replace("`", "")
    for example, *_ in CASES:
        assert example in said, example
