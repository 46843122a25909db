"""benchmarks/gpu_check.py --dry-run: the GPU check's whole plan on the CPU at tiny sizes, so the
script a GPU machine runs once is not first run there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tui_nn.zoo import list_models

GPU_CHECK = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
CUDA_ONLY = ("amp", "cudnn", "nvml", "ranks")
# The rows of the issue 32 findings the CPU can run: each fails when its bug is back.
FAULT_ROWS = ("--compile (cnn)", "NaN on the GPU path", "OOM: the suggested batch trains",
              "OOM: a data set too large", "OOM in the GAN", "tui-nn train --nproc-per-node 2")


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the dry run's plan, whatever is here
    return subprocess.run([sys.executable, str(GPU_CHECK), *args], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, env=env)


def test_the_dry_run_runs_every_cpu_row_and_says_why_it_skips_the_others(tmp_path):
    out = tmp_path / "rows.json"
    proc = _run("--dry-run", "--json", str(out), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {r["check"]: r for r in json.loads(out.read_text())}

    for spec in list_models():  # every zoo model trained one epoch, losses finite
        assert rows[f"zoo {spec.name}"]["status"] == "ok", rows[f"zoo {spec.name}"]
    for group in CUDA_ONLY:
        assert rows[group]["status"].startswith("skipped: needs CUDA ("), rows[group]
    for prefix in FAULT_ROWS:
        row = next(r for name, r in rows.items() if name.startswith(prefix))
        assert row["status"] == "ok", row
    ran = [r for r in rows.values() if not r["check"].startswith("zoo ")
           and r["check"] not in CUDA_ONLY]
    assert {r["check"].split(" ")[0] for r in ran} == {
        "channels_last", "--compile", "seed-style", "best", "expert", "NaN", "OOM:", "OOM",
        "tui-nn", "memory:", "cache"}
    assert all(r["status"] in ("ok",) or r["status"].startswith("ran") for r in ran), ran
    memory = next(r for r in ran if r["check"].startswith("memory:"))
    assert "predicted" in memory["figure"]
    cache = next(r for r in ran if r["check"].startswith("cache"))
    assert "waiting for data" in cache["figure"] and "from the cache" in cache["figure"]

    # The table is the last thing printed: a header, a column line, one line per row.
    table = proc.stdout.strip().splitlines()
    assert table[0].startswith("gpu_check --dry-run") and len(table) == 2 + len(rows)


def test_without_cuda_the_full_check_refuses_in_words(tmp_path):
    proc = _run(tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "no CUDA device here" in proc.stderr and "Traceback" not in proc.stderr
