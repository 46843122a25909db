"""What the system pane and `tui-nn watch` cost per refresh.

    python benchmarks/bench_system_pane.py [--repeat 200]

Prints, in milliseconds per call (median and 95th percentile):
- gpu_stats()                NVML readings of every visible GPU (or the cached "no GPU" answer)
- process_stats(pid)         CPU and memory of a process (psutil)
- read_system(pid)           one system-pane refresh (both of the above)
- MetricsFollower.poll()     watch's poll when nothing changed (one stat), and when one epoch of
                             records (a RunStarted-sized run: 10 step chunks + 1 epoch) arrived
- liveness.writer_pid()      the process scan watch does every 2 s until it knows the writer
- liveness.still_writing()   the cheap re-check once the pid is known
and the share of one core each costs at its refresh interval (2 s pane, 0.25 s poll).

--latency N writes N epochs, one at a time, into a run that the watch app (headless, 100x30)
follows and prints how long each took to reach the screen (target < 1 s).

--watch-seconds N also follows a real headless run (diabetes, in a subprocess) with the watch
app (headless, 100x30) for N seconds and prints the CPU the viewer used, in cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the app drivers

from tui_nn.runs import liveness  # noqa: E402
from tui_nn.runs.follow import MetricsFollower  # noqa: E402
from tui_nn.system import gpu_stats, process_stats  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float]:
    fn()  # warm-up (NVML init, psutil import)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e3, times[int(0.95 * (len(times) - 1))] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--watch-seconds", type=float, default=0.0)
    parser.add_argument("--latency", type=int, default=0, help="epochs to time through watch")
    args = parser.parse_args()
    if args.latency:
        watch_latency(args.latency)
    if args.watch_seconds:
        watch_cpu(args.watch_seconds)
    n = args.repeat
    pid = os.getpid()
    report = gpu_stats()
    print(f"GPU: {'%d visible' % len(report.gpus) if report.available else report.reason}")
    rows = []
    rows.append(("gpu_stats()", *timed(gpu_stats, n), 2.0))
    rows.append(("process_stats(pid)", *timed(lambda: process_stats(pid), n), 2.0))

    from tui_nn.tui.widgets.system_pane import read_system
    rows.append(("read_system(pid) = 1 refresh", *timed(lambda: read_system(pid), n), 2.0))

    with tempfile.TemporaryDirectory() as tmp:
        metrics = Path(tmp) / "metrics.jsonl"
        step = {"type": "StepMetrics", "epoch": 0, "step": 10, "first_step": 1,
                "losses": [0.5] * 10, "lr": 0.01, "samples_per_s": 5000.0, "eta_s": 10.0,
                "epoch_step": 10, "steps_per_epoch": 100, "total_steps": 1000,
                "memory_bytes": None}
        epoch = {"type": "EpochMetrics", "epoch": 0, "step": 100, "train_loss": 0.5,
                 "val_loss": 0.5, "metric": "accuracy", "value": 0.9, "best_value": 0.9,
                 "is_best": True, "elapsed_s": 1.0, "epoch_time_s": 1.0, "samples_per_s": 5e3}
        chunk = "".join(json.dumps(r, separators=(",", ":")) + "\n"
                        for r in [step] * 10 + [epoch]).encode()
        fd = os.open(metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, chunk * 1000)  # a run already 1000 epochs long
        follower = MetricsFollower(tmp)
        t0 = time.perf_counter()
        first = follower.poll()
        first_ms = (time.perf_counter() - t0) * 1e3
        rows.append(("poll(), nothing new", *timed(follower.poll, n), 0.25))

        def grow():
            os.write(fd, chunk)
            t = time.perf_counter()
            follower.poll()
            return time.perf_counter() - t
        grow_times = sorted(grow() for _ in range(n))
        rows.append(("poll(), one epoch appended", statistics.median(grow_times) * 1e3,
                     grow_times[int(0.95 * (n - 1))] * 1e3, 0.25))
        rows.append(("writer_pid() process scan", *timed(lambda: liveness.writer_pid(metrics),
                                                       max(n // 10, 5)), 2.0))
        rows.append(("still_writing(pid)", *timed(lambda: liveness.still_writing(pid, metrics),
                                                  n), 2.0))
        os.close(fd)
    print(f"first poll of a 1000-epoch metrics.jsonl ({len(first)} records, "
          f"{len(chunk) * 1000 / 1e6:.1f} MB): {first_ms:.1f} ms")
    print(f"{'call':34} {'median ms':>10} {'p95 ms':>8} {'every':>6} {'core share':>11}")
    for name, med, p95, every in rows:
        print(f"{name:34} {med:10.3f} {p95:8.3f} {every:5.1f}s {med / 1e3 / every:10.4%}")


def watch_latency(epochs: int) -> None:
    import asyncio
    import json

    from demo import synthetic_run
    from tui_nn.tui.screens.watch import WatchApp

    events = synthetic_run(epochs=epochs, steps_per_epoch=10, chunk=10)
    starts = [i for i, e in enumerate(events) if type(e).__name__ == "EpochMetrics"]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"model": "cnn", "dataset": "digits"}))

        def line(e) -> bytes:
            return (json.dumps(e.to_dict(), separators=(",", ":")) + "\n").encode()

        (run / "metrics.jsonl").write_bytes(b"".join(line(e) for e in events[:starts[0]]))
        fd = os.open(run / "metrics.jsonl", os.O_WRONLY | os.O_APPEND)

        async def follow() -> list[float]:
            app = WatchApp(run)
            delays = []
            async with app.run_test(size=(100, 30)) as pilot:
                screen = app.watch_screen
                await pilot.pause(1.0)
                done = 0
                for k, i in enumerate(starts):
                    end = starts[k + 1] if k + 1 < len(starts) else len(events)
                    t0 = time.monotonic()
                    os.write(fd, b"".join(line(e) for e in events[i:end]))
                    done += 1
                    while screen.epochs_seen < done:
                        await asyncio.sleep(0.005)
                    delays.append(time.monotonic() - t0)
                    await asyncio.sleep(0.3)  # land at a random phase of the next poll
            return delays

        try:
            delays = asyncio.run(follow())
        finally:
            os.close(fd)
    print(f"watch latency over {len(delays)} epochs: median {statistics.median(delays):.3f} s, "
          f"max {max(delays):.3f} s (target < 1 s)")


def watch_cpu(seconds: float) -> None:
    import asyncio
    import subprocess

    from tui_nn.tui.screens.watch import WatchApp

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        proc = subprocess.Popen([sys.executable, "-m", "tui_nn", "train", "diabetes",
                                 "--epochs", "100000", "--headless", "--device", "cpu",
                                 "--run-dir", str(run)], env=env, stdout=subprocess.DEVNULL)
        try:
            while not (run / "metrics.jsonl").exists():
                time.sleep(0.2)

            async def follow():
                app = WatchApp(run)
                async with app.run_test(size=(100, 30)):
                    screen = app.watch_screen
                    while screen.epochs_seen < 5:
                        await asyncio.sleep(0.1)
                    e0, c0, w0 = screen.epochs_seen, time.process_time(), time.monotonic()
                    await asyncio.sleep(seconds)
                    cpu, wall = time.process_time() - c0, time.monotonic() - w0
                    print(f"watch followed {screen.epochs_seen - e0} epochs in {wall:.1f} s "
                          f"using {cpu / wall:.3f} cores (all threads of the viewer)")
            asyncio.run(follow())
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
