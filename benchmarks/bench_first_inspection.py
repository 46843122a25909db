"""Time from a fresh process to the app's first inspection on screen (headless app, Pilot).

    python benchmarks/bench_first_inspection.py [--model cnn] [--runs 3]

Each run is a new process: the time includes Python start-up, importing textual and torch on the
inspector's worker, and the first trace (the costs issue 17 is about). Prints the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def _first_inspection(model: str, started: float) -> float:
    from tui_nn.tui.app import make_app

    app = make_app(model=model)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            inspector = app.main.query_one("#inspector")
            done = inspector.inspection is not None or inspector.error
            if done and not inspector.pending:
                return time.perf_counter() - started
            await pilot.pause(0.01)
    raise SystemExit("no inspection within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        started = float(os.environ["BENCH_STARTED"])
        print(json.dumps({"s": asyncio.run(_first_inspection(args.model, started))}))
        return
    times, cpu = [], []
    for _ in range(args.runs):
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        env = {**os.environ, "BENCH_STARTED": repr(time.perf_counter())}
        out = subprocess.run([sys.executable, __file__, "--child", "--model", args.model],
                             capture_output=True, text=True, env=env, check=True)
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["s"])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the whole child, exit included
        cpu.append(after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime)
    print(f"first inspection of {args.model} in the app, from process start: median "
          f"{statistics.median(times):.2f} s ({', '.join(f'{t:.2f}' for t in times)}); "
          f"process CPU median {statistics.median(cpu):.2f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
