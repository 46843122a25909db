"""tui_nn.Run.log_step cost: median and 99th percentile per call over N calls (target: median
<= 5 us), with a float loss and with a 0-d tensor loss (CUDA when there is one: that one must
not sync per step; the test suite checks the no-sync rule on the CPU).

    python benchmarks/bench_log_step.py [--calls 200000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import tui_nn


def measure(calls: int, loss_of) -> tuple[float, float]:
    times = []
    with tempfile.TemporaryDirectory() as d:
        with tui_nn.Run(Path(d) / "r", model="bench") as run:
            for i in range(calls):
                loss = loss_of(i)
                t0 = time.perf_counter_ns()
                run.log_step(loss=loss, lr=0.1)
                times.append(time.perf_counter_ns() - t0)
    times.sort()
    return statistics.median(times) / 1e3, times[int(len(times) * 0.99)] / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    med, p99 = measure(args.calls, lambda i: 1.0 / (i + 1))
    print(f"log_step, float loss: median {med:.2f} us, p99 {p99:.2f} us "
          f"({args.calls:,} calls; target median <= 5 us)")
    import torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    losses = [torch.tensor(1.0 / (i + 1), device=device) for i in range(min(args.calls, 50_000))]
    med, p99 = measure(len(losses), lambda i: losses[i])
    print(f"log_step, 0-d {device} tensor loss: median {med:.2f} us, p99 {p99:.2f} us "
          f"(read back once per record, not per step)")


if __name__ == "__main__":
    main()
