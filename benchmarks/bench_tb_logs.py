"""Reading TensorBoard log directories (`tui-nn runs` / `watch` on SummaryWriter logs),
measured in one run on a log written here with torch's SummaryWriter:

1. listing: read_run_info on the whole log (what `tui-nn runs` does per log directory);
2. following: the watch screen's first poll (the whole log), a poll after the writer appends
   APPEND more events (only those are read), and a poll when nothing changed (a stat per file).

The reader is tensorboard's own; without TensorFlow it is pure Python (a CRC per record), so
the per-event figure is the one to watch.

    python benchmarks/bench_tb_logs.py [--events 100000] [--append 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def write(log: Path, first: int, n: int) -> None:
    from torch.utils.tensorboard import SummaryWriter
    with SummaryWriter(str(log)) as w:
        for s in range(first, first + n):
            w.add_scalar("train/loss", 1 / (s + 1), s)
            if s % 100 == 0:
                w.add_scalar("val/accuracy", s / (first + n), s)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--append", type=int, default=1000)
    args = ap.parse_args()
    from tui_nn.runs import read_run_info
    from tui_nn.runs.tensorboard import TensorBoardFollower

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "exp"
        write(log, 0, args.events)
        size = sum(f.stat().st_size for f in log.iterdir())
        info, listing = timed(lambda: read_run_info(log))
        follower = TensorBoardFollower(log)
        points, first = timed(follower.poll)
        write(log, args.events, args.append)  # a second event file, as a resumed writer makes
        more, incremental = timed(follower.poll)
        idle = min(timed(follower.poll)[1] for _ in range(50))
    n = len(points)
    print(f"log: {n} scalars, {size / 1e6:.1f} MB, steps {info.steps_done}, "
          f"best {info.metric} {info.best_value:.3f}")
    print(f"listing (read_run_info): {listing:.2f} s = {listing / n * 1e6:.1f} us/scalar")
    print(f"watch, first poll:       {first:.2f} s = {first / n * 1e6:.1f} us/scalar")
    print(f"watch, +{len(more)} scalars:     {incremental * 1e3:.1f} ms "
          f"(ratio to a full re-read: {incremental / first:.3f})")
    print(f"watch, nothing new:      {idle * 1e6:.0f} us")


if __name__ == "__main__":
    main()
