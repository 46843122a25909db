"""Peak resident memory of `tui-nn train cnn` on the 60,000-sample digits set (CPU).

    python benchmarks/bench_memory.py [--epochs 1] [--model cnn]

Target: under 1.5 GB RSS. The child's peak RSS comes from getrusage(RUSAGE_CHILDREN)."""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cnn")
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tui_nn", "train", args.model, "--dataset",
                               "digits", "--epochs", str(args.epochs), "--headless",
                               "--run-dir", f"{tmp}/run"], capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    print(proc.stdout.strip().splitlines()[-1])
    print(f"{args.model}, {args.epochs} epoch(s) on 60,000 digits: peak RSS "
          f"{peak_kib / 1024:.0f} MiB ({peak_kib / 1024 / 1024:.2f} GiB; target < 1.5 GB), "
          f"{seconds:.1f} s wall")


if __name__ == "__main__":
    main()
