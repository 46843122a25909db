"""The README's install and test lines and the suite's warnings (issue 31.12): the CPU wheel
for CPU-only machines, what the browser test needs, and no warning the project can fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_cpu_wheel_comes_before_the_package_on_cpu_only_machines():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    cpu = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in quick
    after = quick.split(cpu, 1)[1]
    assert after.lstrip().startswith("pip install -e ."), after[:80]


def test_the_test_command_says_what_the_browser_test_needs():
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "tests/test_serve.py" in quick and "Chromium" in quick and ".ci/run" in quick
    serve_tests = (ROOT / "tests" / "test_serve.py").read_text()
    assert 'reason="Chromium is not installed"' in serve_tests  # the skip the README promises


def test_every_filtered_warning_says_why():
    text = (ROOT / "pyproject.toml").read_text()  # no tomllib: Python 3.10 is supported
    block = text.split("filterwarnings = [", 1)[1].split("\n]", 1)[0].splitlines()
    entries = [i for i, line in enumerate(block) if line.strip().startswith('"')]
    assert entries
    for i in entries:
        assert block[i - 1].strip().startswith("#"), f"no reason above {block[i]!r}"


def test_the_memory_tests_raise_no_onednn_tf32_warning():
    """torch.backends.mkldnn.flags() sets oneDNN's TF32 flag unless told not to, and torch then
    warns on every build without Intel GPU support: 14 warnings in each suite run. The LSTM
    memory test in a fresh interpreter (the warning is issued once per process), warnings as
    errors."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}",
           "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import test_shapes_memory as t; "
         "t.test_zoo_activations_match_what_autograd_saves('lstm')"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
