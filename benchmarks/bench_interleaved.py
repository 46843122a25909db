"""The app's training throughput against headless, measured so that the machine's own speed
swings cancel: both runs are alive at once and take turns, an epoch each.

    python benchmarks/bench_interleaved.py [--model cnn] [--epochs 12] [--n-train 16384]
                                           [--presses] [--size 120x36]

bench_key_latency.py runs the app and headless one after the other. On a shared 2-core VM the
same headless command ran at two speeds that switched every few minutes (epochs of 1.16-1.21 s
in one run, 1.55-1.59 s in the next), so app/headless pairs spread from 0.67 to 1.23 and a 5%
target could not be told from the swing. Here the app (in tmux, on its Train tab, as a user
runs it) and a headless run of the same config start together; through each run's control
channel one is paused while the other trains an epoch, then they swap. A pause is left out of
an epoch's time (the engine's epoch_time_s), so each epoch's time is its training alone, and
epoch k of the app and epoch k of headless ran seconds apart, at the same machine speed.

The paused run still idles: the app's UI (its timers, the system pane) and the headless
console reporter's refresh, each well under 1% of a core. The headless run writes to a pipe
(its plain progress lines), not a terminal: a little cheaper than a live progress bar, so the
ratio leans against the app. With --presses, keys are pressed (about two a second, the Log and
Train tabs in turn) during the app's odd epochs, as in bench_key_latency.py.

Printed: each epoch's time on both sides, app/headless over the even epochs from 2 on (no key
pressed; the target, >= 0.95) and, with --presses, over the odd ones; epoch 0 (start-up) and
the last epoch (headless exits while the app trains it) are left out.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_key_latency as bkl  # noqa: E402
from bench_tui_overhead import _dataset  # noqa: E402


def send(run_dir: Path, action: str) -> None:
    from tui_nn.engine.channel import ChannelError
    from tui_nn.engine.channel import send as channel_send

    error = None
    for _ in range(50):  # the channel appears once the run has started
        try:
            channel_send(run_dir, action)
            return
        except ChannelError as exc:
            error = exc
            time.sleep(0.1)
    raise SystemExit(f"{run_dir}: the control channel did not take {action}: {error}")


def start_headless(args, run_dir: Path) -> subprocess.Popen:
    argv = bkl.child_argv(args, "headless", run_dir)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(bkl.ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def take_turns(args, app_dir: Path, head_dir: Path, headless: subprocess.Popen) -> int:
    """Headless trains epoch k, then the app trains epoch k, and so on (the app is paused and
    headless running on entry); returns the presses."""
    presses = 0
    for epoch in range(args.epochs):
        for run_dir in (head_dir, app_dir):
            if run_dir is app_dir or epoch:
                send(run_dir, "resume")
            press = args.presses and run_dir is app_dir and epoch % 2 == 1
            presses += wait_epoch(run_dir, epoch + 1, press, args.poll_ms / 1000, presses)
            if epoch + 1 < args.epochs:
                send(run_dir, "pause")
            if headless.poll() not in (None, 0):
                raise SystemExit(f"headless failed: {headless.stderr.read()[-2000:]}")
    return presses


def wait_epoch(run_dir: Path, done: int, press: bool, poll_s: float, pressed: int) -> int:
    """Until run_dir has `done` epochs (checked every 10 ms, also between presses: the run is
    paused as soon as its epoch ends); pressing keys meanwhile when asked, the Log and Train
    tabs in turn from `pressed` presses so far. Returns the presses made."""
    presses = 0
    next_press = time.monotonic()
    while bkl.epochs_done(run_dir) < done:
        if press and time.monotonic() >= next_press:
            # A frame not seen within 1 s: go on (the epoch may end meanwhile).
            bkl.press("3" if (pressed + presses) % 2 == 0 else "2", poll_s, timeout_s=1.0)
            presses += 1
            next_press = time.monotonic() + random.uniform(0.3, 0.6)
        time.sleep(0.01)
    return presses


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="cnn")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-train", type=int, default=16384)
    p.add_argument("--n-val", type=int, default=2048)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--presses", action="store_true", help="press keys in the app's odd epochs")
    p.add_argument("--poll-ms", type=float, default=10.0)
    p.add_argument("--size", default="120x36", help="terminal COLSxROWS")
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    if args.epochs < 4:
        raise SystemExit("--epochs must be at least 4 (epoch 0 warms up, the last is left "
                         "out; even epochs from 2)")
    load0 = os.getloadavg()[0]
    _dataset(args)  # generated once, outside the runs
    with tempfile.TemporaryDirectory(prefix="tui-nn-interleaved-") as tmp:
        app_dir, head_dir = Path(tmp) / "app", Path(tmp) / "headless"
        cols, rows = (int(v) for v in args.size.lower().split("x"))
        bkl.start_session(bkl.child_argv(args, "app", app_dir, train=True), cols, rows)
        headless = None
        try:
            bkl.wait_for(app_dir.with_suffix(".ready"), args.timeout)
            send(app_dir, "pause")  # headless starts (and warms up) alone
            headless = start_headless(args, head_dir)
            presses = take_turns(args, app_dir, head_dir, headless)
            headless.wait(args.timeout)
            bkl.wait_gone(args.timeout)
        finally:
            if headless is not None:
                headless.kill()
            bkl.kill_session()
        app, head = bkl.epoch_times(app_dir), bkl.epoch_times(head_dir)
    report(args, app, head, presses, load0)


def report(args, app: list[float], head: list[float], presses: int, load0: float) -> None:
    print(f"{args.model}, {args.n_train} samples x {args.epochs} epochs, batch "
          f"{args.batch_size}, {args.threads} threads; app in tmux {args.size}; load average "
          f"{load0:.2f} -> {os.getloadavg()[0]:.2f}")
    print("epoch      " + " ".join(f"{k:6d}" for k in range(len(app))))
    print("app s      " + " ".join(f"{t:6.3f}" for t in app))
    print("headless s " + " ".join(f"{t:6.3f}" for t in head))
    # The last epoch is left out: headless, done first, exits (checkpoint, files) while the app
    # trains its last epoch.
    last = len(app) - 1
    print(f"last epoch (left out: headless exits meanwhile): app {app[last]:.3f} s, headless "
          f"{head[last]:.3f} s")
    quiet = list(range(2, last, 2))
    ratios = [head[k] / app[k] for k in quiet]
    ratio = sum(head[k] for k in quiet) / sum(app[k] for k in quiet)
    print(f"app/headless, epochs with no key pressed: per epoch "
          f"{', '.join(f'{r:.3f}' for r in ratios)}; median {statistics.median(ratios):.3f}; "
          f"over them all {ratio:.3f} (target >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'})")
    if args.presses:
        pressed = list(range(1, last, 2))
        r = sum(head[k] for k in pressed) / sum(app[k] for k in pressed)
        print(f"app/headless, epochs with keys pressed ({presses} presses): {r:.3f}")


if __name__ == "__main__":
    main()
