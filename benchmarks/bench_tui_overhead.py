"""Training throughput with the app open vs headless: the same run, measured in one invocation.

    python benchmarks/bench_tui_overhead.py [--model cnn] [--epochs 2] [--n-train 16384]
                                            [--pairs 2] [--size 120x36]
    python benchmarks/bench_tui_overhead.py --first-frame   # `tui-nn` start -> first frame

Each run is a fresh process on its own pseudo-terminal (what a user's terminal would be):

- headless: the engine with the console reporter that
  `tui-nn train MODEL --headless` uses in a terminal (a live Rich progress bar);
- app: the Textual app, started like a user would (open it, let the zoo load and the model be
  inspected, press start), drawing the live curves, the progress bars and the status at the
  given terminal size, with this script reading (and discarding) every byte it writes, as a
  terminal emulator would.

Both train the same model on the same in-memory slice of the embedded `digits` set with the same
seed and the same number of CPU threads. Runs alternate (H A A H H A ...) so drift hits both
sides alike, and the ratio is the median of the back-to-back pairs' ratios. A run during which
other processes used more than --max-other-load cores is re-run (a shared machine measures the
neighbours, not this program). Throughput = training samples / summed epoch time (train +
validation), read from each run's metrics.jsonl. The target is app/headless ≥ 0.95.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import resource
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _dataset(args):
    from tui_nn.data.digits import load_digits

    return load_digits(n_train=args.n_train, n_val=args.n_val, seed=0)


def _options(args, run_dir: str) -> dict:
    options = dict(epochs=args.epochs, batch_size=args.batch_size, lr=0.01, seed=0,
                   run_dir=run_dir, device=args.device, threads=args.threads)
    if getattr(args, "no_insight", False):  # the app's Insight tab hooks off (A/B)
        options.update(grad_flow=False, live_fit=False, val_predictions=False)
    return options


# ---- children (run on a pseudo-terminal) -------------------------------------------------------
def child_headless(args) -> None:
    from tui_nn.engine import TrainConfig, Trainer
    from tui_nn.commands.console import RichReporter

    ds = _dataset(args)
    reporter = RichReporter(sys.stdout)  # what the headless CLI uses on a terminal
    try:
        Trainer(TrainConfig(model=args.model, **_options(args, args.run_dir)), reporter,
                dataset=ds).run()
    finally:
        reporter.close()


def child_app(args) -> None:
    from tui_nn.tui.app import TuiNNApp

    class BenchApp(TuiNNApp):
        """The real app, driven like a user would: wait until it has settled (zoo loaded,
        model inspected), press start on the Train tab, quit once the run is over."""

        def on_mount(self) -> None:
            super().on_mount()
            self._started = False
            self.set_interval(0.25, self._drive)

        def _drive(self) -> None:
            main = self.main
            bridge = main.bridge
            if not self._started:
                inspector = main.query_one("#inspector")
                if main.model_source and inspector.inspection is not None \
                        and not inspector.pending:
                    self._started = True
                    main.show_tab(args.tab)
                    main.action_start_training()
            elif bridge.result is not None and not bridge.running:
                self.exit()

    # In the app the data is loaded by the engine on the training thread (the headless CLI loads
    # it on its main thread, where it also trains). Loading it here on the app's main thread
    # would leave an OpenMP thread team there: see tui_nn.tui.bridge.in_fresh_thread.
    from tui_nn.tui.bridge import in_fresh_thread

    ds = in_fresh_thread(lambda: _dataset(args), "load-data")
    BenchApp(model=args.model, train_options=_options(args, args.run_dir), dataset=ds).run()


# ---- parent -----------------------------------------------------------------------------------
def _busy_seconds() -> float:
    """CPU time the whole machine has spent busy, from /proc/stat (all cores)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_on_pty(argv: list[str], cols: int, rows: int, timeout: float) -> tuple[int, int, float]:
    """Run argv on a new pseudo-terminal, draining its output.

    Returns (exit code, bytes written, other load): the CPU the rest of the machine used
    meanwhile, in cores (other processes; a run that shared the CPU with them is not a
    measurement of this program)."""
    wall0, busy0, own0 = time.monotonic(), _busy_seconds(), _own_seconds()
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
    env.pop("TEXTUAL", None)
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT,
                            start_new_session=True)
    os.close(slave)
    written = 0
    tail = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"{argv[-1]} run took longer than {timeout:.0f}s")
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    chunk = b""
                if not chunk and proc.poll() is not None:
                    break
                written += len(chunk)
                tail = (tail + chunk)[-4000:]
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    code = proc.wait()
    if code != 0:
        sys.stderr.write(tail.decode(errors="replace") + "\n")
    wall = time.monotonic() - wall0
    other = max(0.0, (_busy_seconds() - busy0) - (_own_seconds() - own0)) / max(wall, 1e-9)
    return code, written, other


def first_frame(cols: int, rows: int, repeats: int) -> None:
    """Time from starting `tui-nn` to its first frame (the footer's key bindings on screen),
    and to the model list being filled in (the zoo loads after the first frame)."""
    exe = Path(sys.executable).with_name("tui-nn")
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "tui_nn"]
    for i in range(repeats):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color"}
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                cwd=ROOT, start_new_session=True)
        os.close(slave)
        seen = b""
        first = ready = None
        while ready is None and time.monotonic() - t0 < 120:
            r, _, _ = select.select([master], [], [], 0.05)
            if r:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
            if first is None and b"Quit" in seen:
                first = time.monotonic() - t0
            if b"logistic" in seen:  # the second zoo entry: the list is filled in
                ready = time.monotonic() - t0
        os.write(master, b"q")
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.close(master)
        print(f"start {i + 1}: first frame {first:.2f}s, model list {ready:.2f}s", flush=True)


def throughput(run_dir: Path) -> dict:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    started = next(r for r in records if r["type"] == "RunStarted")
    epochs = [r for r in records if r["type"] == "EpochMetrics"]
    if not epochs or records[-1]["type"] != "Finished":
        raise RuntimeError(f"run in {run_dir} did not finish: {records[-1]}")
    seconds = sum(e["epoch_time_s"] for e in epochs)
    return {"samples_per_s": started["n_train"] * len(epochs) / seconds, "seconds": seconds,
            "epochs": len(epochs), "device": started["device_name"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-train", type=int, default=16384)
    parser.add_argument("--n-val", type=int, default=2048)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="CPU threads for both runs (default: all cores; 0 lets the engine "
                             "pick by timing, which concurrent load can sway)")
    parser.add_argument("--pairs", type=int, default=2, help="headless/app pairs to run")
    parser.add_argument("--size", default="120x36", help="terminal COLSxROWS")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--max-other-load", type=float, default=0.15,
                        help="re-run a measurement when other processes used more CPU than "
                             "this many cores meanwhile (a shared machine)")
    parser.add_argument("--retries", type=int, default=3)
    parser.add_argument("--no-insight", action="store_true",
                        help="the app asks the engine for no Insight tab data (A/B)")
    parser.add_argument("--tab", default="train", choices=("train", "model", "log", "insight"),
                        help="the tab shown while training (train: live curves and status)")
    parser.add_argument("--first-frame", action="store_true",
                        help="only time `tui-nn` start to first frame (3 starts)")
    parser.add_argument("--child", choices=("headless", "app"), help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child == "headless":
        return child_headless(args)
    if args.child == "app":
        return child_app(args)

    cols, rows = (int(v) for v in args.size.lower().split("x"))
    if args.first_frame:
        return first_frame(cols, rows, 3)
    _dataset(args)  # generate (and cache) the data once, outside the timed runs
    results: dict[str, list[dict]] = {"headless": [], "app": []}
    order = []
    for i in range(args.pairs):
        order += ["headless", "app"] if i % 2 == 0 else ["app", "headless"]
    with tempfile.TemporaryDirectory(prefix="tui-nn-bench-") as tmp:
        for i, mode in enumerate(order):
            run_dir = Path(tmp) / f"{i:02d}-{mode}"
            argv = [sys.executable, str(Path(__file__).resolve()), "--child", mode,
                    "--run-dir", str(run_dir), "--model", args.model,
                    "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                    "--n-train", str(args.n_train), "--n-val", str(args.n_val),
                    "--device", args.device, "--threads", str(args.threads), "--tab", args.tab]
            if args.no_insight:
                argv.append("--no-insight")
            for attempt in range(args.retries + 1):
                if run_dir.exists():
                    shutil.rmtree(run_dir)
                code, written, other = run_on_pty(argv, cols, rows, args.timeout)
                if code != 0:
                    raise SystemExit(f"{mode} run failed with exit code {code}")
                r = throughput(run_dir) | {"terminal_bytes": written, "other_load": other}
                busy = other > args.max_other_load
                print(f"{mode:8s} run {i + 1}/{len(order)}: {r['samples_per_s']:8.0f} samples/s "
                      f"({r['epochs']} epochs, {r['seconds']:.1f}s, {written / 1024:.0f} KiB "
                      f"drawn; other processes used {other:.2f} cores"
                      f"{', discarded' if busy and attempt < args.retries else ''})",
                      flush=True)
                if not busy:
                    break
            results[mode].append(r)

    loads = [r["other_load"] for rs in results.values() for r in rs]
    if max(loads) > args.max_other_load:
        print(f"\nwarning: other processes used up to {max(loads):.2f} cores during the kept "
              f"runs: the ratio below is not a clean measurement")
    h = [r["samples_per_s"] for r in results["headless"]]
    a = [r["samples_per_s"] for r in results["app"]]
    pair_ratios = [x / y for x, y in zip(a, h)]
    ratio = statistics.median(pair_ratios)  # each pair ran back to back: drift cancels
    device = results["headless"][0]["device"]
    print(f"\n{args.model}, {args.n_train} samples × {args.epochs} epochs, batch "
          f"{args.batch_size}, on {device}; app drawn at {cols}×{rows}")
    print(f"headless median {statistics.median(h):.0f} samples/s, app median "
          f"{statistics.median(a):.0f} samples/s")
    print(f"per-pair app/headless: {', '.join(f'{r:.3f}' for r in pair_ratios)}")
    print(f"app/headless throughput ratio (median of pairs): {ratio:.3f} (target ≥ 0.95: "
          f"{'met' if ratio >= 0.95 else 'NOT met'})")


if __name__ == "__main__":
    main()
