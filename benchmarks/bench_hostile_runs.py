"""`tui-nn runs` and the watch follower on a tree holding one run of each hostile kind (ESC
sequences, markup, deep JSON, a 50 MB line, FIFOs, symlinks to devices, fields of the wrong
type: tests/hostile.py), against the same command on the good run alone.

    python benchmarks/bench_hostile_runs.py

Targets (issue 13): `tui-nn runs` exits 0 within a few seconds; the follower catches up on a
50 MB line without holding it (its peak RSS stays near a plain Python process's, not GBs).
Each child's peak RSS comes from getrusage(RUSAGE_CHILDREN) read after it alone has run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from hostile import good_run, hostile_tree  # noqa: E402

FOLLOW = """
import sys
from tui_nn.runs.follow import MetricsFollower
f = MetricsFollower(sys.argv[1])
n = 0
while True:
    n += len(f.poll())
    if not f.behind:
        break
print(n, f.skipped)
"""


def peak_mib_of(args: list[str]) -> tuple[float, int, str, float]:
    # RUSAGE_CHILDREN is the max over all waited-for children: measure each in a fresh helper.
    code = ("import resource,subprocess,sys,time,json;t=time.perf_counter();"
            "p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
            "print(json.dumps([time.perf_counter()-t,p.returncode,p.stdout,"
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024]))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code, sys.executable, *args],
                         capture_output=True, text=True, env=env, timeout=300).stdout
    seconds, rc, stdout, peak = json.loads(out)
    return seconds, rc, stdout, peak


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hostile, plain = Path(tmp) / "hostile", Path(tmp) / "plain"
        runs = hostile_tree(hostile)
        good_run(plain / "good-run")
        base_s, base_rc, _, base_mib = peak_mib_of(["-m", "tui_nn", "runs", "--root",
                                                    str(plain)])
        s, rc, out, mib = peak_mib_of(["-m", "tui_nn", "runs", "--root", str(hostile)])
        listed = sum(1 for line in out.splitlines()[2:] if line.strip())
        print(f"tui-nn runs, 1 good run:            {base_s:.2f} s, peak RSS {base_mib:.0f} "
              f"MiB, exit {base_rc}")
        print(f"tui-nn runs, {len(runs)} runs (7 hostile): {s:.2f} s, peak RSS {mib:.0f} MiB, "
              f"exit {rc}, {listed} listed; time ratio {s / base_s:.2f}x, memory ratio "
              f"{mib / base_mib:.2f}x")
        fs, frc, fout, fmib = peak_mib_of(["-c", FOLLOW, str(runs["big"])])
        n, skipped = fout.split()
        print(f"follower over a 50 MB line + 4 records: {fs:.2f} s, peak RSS {fmib:.0f} MiB, "
              f"{n} records, {skipped} line skipped, exit {frc}")


if __name__ == "__main__":
    main()
