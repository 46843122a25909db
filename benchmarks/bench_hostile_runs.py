"""`tui-nn runs` and the watch follower on a tree holding one run of each hostile kind (ESC
sequences, markup, deep JSON, a 50 MB line, FIFOs, symlinks to devices, fields of the wrong
type: tests/hostile.py), against the same command on the good run alone.

    python benchmarks/bench_hostile_runs.py

Targets (issue 13): `tui-nn runs` exits 0 within a few seconds; the follower catches up on a
50 MB line without holding it (its peak RSS stays near a plain Python process's, not GBs).
Issue 26 adds a run that logged 1e308 and -1e308 and a TensorBoard log with a wall time of
1e300 (when tensorboard is installed): `runs` and `runs --json` list them, exit 0; and the
control flood against a live run (bench_control_flood.py at a tenth of its counts; run that
script itself for the full 1,000 + 1,000).
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

from hostile import good_run, hostile_tree, record  # noqa: E402

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
        runs.update(_round_two(hostile))
        good_run(plain / "good-run")
        base_s, base_rc, _, base_mib = peak_mib_of(["-m", "tui_nn", "runs", "--root",
                                                    str(plain)])
        s, rc, out, mib = peak_mib_of(["-m", "tui_nn", "runs", "--root", str(hostile)])
        listed = sum(1 for line in out.splitlines()[2:] if line.strip())
        print(f"tui-nn runs, 1 good run:            {base_s:.2f} s, peak RSS {base_mib:.0f} "
              f"MiB, exit {base_rc}")
        print(f"tui-nn runs, {len(runs)} runs ({len(runs) - 1} hostile): {s:.2f} s, "
              f"peak RSS {mib:.0f} MiB, "
              f"exit {rc}, {listed} listed; time ratio {s / base_s:.2f}x, memory ratio "
              f"{mib / base_mib:.2f}x")
        js, jrc, jout, _ = peak_mib_of(["-m", "tui_nn", "runs", "--json", "--root",
                                        str(hostile)])
        print(f"tui-nn runs --json, the same tree:   {js:.2f} s, exit {jrc}, "
              f"{len(json.loads(jout)) if jrc == 0 else 0} listed")
        fs, frc, fout, fmib = peak_mib_of(["-c", FOLLOW, str(runs["big"])])
        n, skipped = fout.split()
        print(f"follower over a 50 MB line + 4 records: {fs:.2f} s, peak RSS {fmib:.0f} MiB, "
              f"{n} records, {skipped} line skipped, exit {frc}")
    print("control flood of a live run (a slow-loris client, 50 idle clients, 100 bad and "
          "100 good requests):", flush=True)
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_control_flood.py"),
                    "--good", "100", "--bad", "100", "--idle", "50"], check=False)


def _round_two(root: Path) -> dict[str, Path]:
    """Issue 26's runs: losses and a val_loss of ±1e308; a TensorBoard wall time of 1e300."""
    huge = good_run(root / "huge-values", extra=record(
        type="StepMetrics", epoch=0, step=3, first_step=1, losses=[1.0, 1e308, -1e308], lr=0.1,
        samples_per_s=1.0, eta_s=None, epoch_step=3, steps_per_epoch=3, total_steps=6)
        + record(type="EpochMetrics", epoch=0, step=3, train_loss=1e308, val_loss=1e308,
                 metric="accuracy", value=1e308, best_value=1e308, is_best=True,
                 elapsed_s=1.0, epoch_time_s=1.0, samples_per_s=1.0))
    out = {"huge": huge}
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return out
    with SummaryWriter(str(root / "tb-walltime")) as w:
        w.add_scalar("val/loss", 0.5, 1, walltime=1e300)
    out["walltime"] = root / "tb-walltime"
    return out


if __name__ == "__main__":
    main()
