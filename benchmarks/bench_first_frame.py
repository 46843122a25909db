"""The app's first useful frame in a real terminal: launch `tui-nn` in a detached tmux session
and poll `tmux capture-pane` until the model list shows (target ≤ 1 s).

    python benchmarks/bench_first_frame.py [--runs 3] [--size 100x30] [--repo PATH]

--repo times another checkout's copy (PYTHONPATH=PATH), for a before/after on the same box.
Each run is a fresh process; the figure is from starting the session to the first capture that
shows the list (tmux's own start-up is in it: about 10 ms here). Needs tmux."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

# Names that appear only in the model list (not in the title, the tabs or the footer).
MARKERS = ("logistic", "inception", "rnn-seq")


def first_frame(repo: Path, size: tuple[int, int], timeout: float = 30.0) -> float:
    name = f"tui-nn-first-frame-{uuid.uuid4().hex[:8]}"
    env = f"PYTHONPATH={shlex.quote(str(repo))} OMP_NUM_THREADS=1 TERM=xterm-256color"
    command = f"cd {shlex.quote(str(repo))} && env {env} {shlex.quote(sys.executable)} -m tui_nn"
    t0 = time.perf_counter()
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", str(size[0]),
                    "-y", str(size[1]), command], check=True)
    try:
        while time.perf_counter() - t0 < timeout:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", name],
                                    capture_output=True, text=True).stdout
            if all(marker in screen for marker in MARKERS):
                return time.perf_counter() - t0
            time.sleep(0.01)
        raise SystemExit(f"no model list after {timeout:.0f} s; the screen:\n{screen}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--size", default="100x30")
    p.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    args = p.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("needs tmux")
    width, height = (int(n) for n in args.size.split("x"))
    times = []
    for _ in range(args.runs):
        times.append(first_frame(Path(args.repo), (width, height)))
        time.sleep(1.0)  # the killed app's threads gone before the next start
    load = os.getloadavg()[0]
    print(f"tui-nn first frame with the model list ({args.repo}): "
          + ", ".join(f"{t:.2f}" for t in times)
          + f" s; median {sorted(times)[len(times) // 2]:.2f} s (load {load:.1f}; target ≤ 1 s)")


if __name__ == "__main__":
    main()
