"""Start-up: `tui-nn --help` wall time (target < 0.5 s) and time from launching `tui-nn` to
the app's first drawn frame (target < 3 s), each the best of N runs.

    python benchmarks/bench_startup.py [--runs 5]

The first-frame time is measured by launching the app in a pseudo-terminal and waiting for the
first screen bytes that contain the app's title."""

from __future__ import annotations

import argparse
import os
import pty
import select
import subprocess
import sys
import time


def time_help() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tui_nn", "--help"], capture_output=True, check=True)
    return time.perf_counter() - t0


def time_first_frame(marker: bytes = b"tui-nn", timeout: float = 30.0) -> float:
    pid, fd = pty.fork()
    if pid == 0:  # child: the app in a 100×30 terminal
        os.environ.update({"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"})
        os.execv(sys.executable, [sys.executable, "-m", "tui_nn"])
    t0 = time.perf_counter()
    seen = b""
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(fd, 65536)
                except OSError:
                    break
                # The first full frame: the alternate screen was entered and the title drawn.
                if b"\x1b[?1049h" in seen and marker in seen.split(b"\x1b[?1049h", 1)[1]:
                    return time.perf_counter() - t0
        raise SystemExit("the app never drew its first frame")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    helps = [time_help() for _ in range(args.runs)]
    print(f"tui-nn --help: best {min(helps):.3f} s, median {sorted(helps)[len(helps) // 2]:.3f} s "
          f"(target < 0.5 s)")
    frames = [time_first_frame() for _ in range(args.runs)]
    print(f"tui-nn first frame: best {min(frames):.3f} s, median "
          f"{sorted(frames)[len(frames) // 2]:.3f} s (target < 3 s)")


if __name__ == "__main__":
    main()
