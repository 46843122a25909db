"""The control channel, measured in one run:

1. latency: from starting `tui-nn control RUN pause` (a new process, as a user or script would)
   to the run's StateChanged "paused" record in metrics.jsonl, over N tries against a real
   headless run (target: median <= 0.5 s);
2. cost: samples/s of `mlp` with the channel served vs not (alternating pairs of in-process
   runs on the same data): the channel is a thread waiting in select(), the step loop only
   checks the flags it always checked, so the ratio should be 1 within noise.

    python benchmarks/bench_control.py [--tries 20] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _count(run: Path, state: str) -> int:
    text = (run / "metrics.jsonl").read_text()
    return text.count(f'"type":"StateChanged","state":"{state}"')


def _wait_count(run: Path, state: str, n: int, timeout: float = 30) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _count(run, state) >= n:
            return time.monotonic()
        time.sleep(0.002)
    raise SystemExit(f"no {state} record within {timeout} s")


def latency(tries: int) -> list[float]:
    root = Path(tempfile.mkdtemp())
    run = root / "run"
    proc = subprocess.Popen([sys.executable, "-m", "tui_nn", "train", "curve", "--epochs",
                             "1000000", "--headless", "--run-dir", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while not (run / "control.sock").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the run did not start: {proc.stderr.read().decode()}")
            time.sleep(0.05)
        out = []
        for i in range(1, tries + 1):
            t0 = time.monotonic()
            subprocess.run([sys.executable, "-m", "tui_nn", "control", str(run), "pause"],
                           check=True, capture_output=True, env=ENV)
            out.append(_wait_count(run, "paused", i) - t0)
            subprocess.run([sys.executable, "-m", "tui_nn", "control", str(run), "resume"],
                           check=True, capture_output=True, env=ENV)
            _wait_count(run, "running", i)
        return out
    finally:
        proc.kill()
        proc.wait()


def throughput(control: bool, epochs: int) -> float:
    from tui_nn.engine import TrainConfig, Trainer
    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(TrainConfig("mlp", epochs=epochs, control=control, threads=1,
                                      tensorboard=False, run_dir=str(Path(d) / "r")))
        result = trainer.run()
        assert result.status == "finished", result
        return statistics.median(e.samples_per_s for e in trainer.history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    lat = latency(args.tries)
    print(f"control pause -> StateChanged record, {len(lat)} tries: median "
          f"{statistics.median(lat):.3f} s, max {max(lat):.3f} s (target median <= 0.5 s)")
    ratios = []
    throughput(True, 1)  # warm-up: the digits cache, first-call kernels
    for i in range(args.pairs):
        order = (True, False) if i % 2 == 0 else (False, True)
        speed = {c: throughput(c, args.epochs) for c in order}
        ratios.append(speed[True] / speed[False])
        print(f"pair {i + 1}: with channel {speed[True]:,.0f} samples/s, without "
              f"{speed[False]:,.0f} samples/s, ratio {ratios[-1]:.3f}")
    print(json.dumps({"latency_median_s": round(statistics.median(lat), 3),
                      "latency_max_s": round(max(lat), 3),
                      "throughput_ratio_median": round(statistics.median(ratios), 3),
                      "throughput_ratios": [round(r, 3) for r in ratios]}))


if __name__ == "__main__":
    main()
