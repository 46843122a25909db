"""The app's training throughput against headless, measured so that the machine's own speed
swings cancel: both runs are alive at once and take turns, an epoch each.

    sudo python benchmarks/bench_interleaved.py [--model cnn] [--epochs 12] [--n-train 16384]
                                                [--presses] [--size 120x36]

bench_key_latency.py runs the app and headless one after the other. On a shared 2-core VM the
same headless command ran at two speeds that switched every few minutes (epochs of 1.16-1.21 s
in one run, 1.55-1.59 s in the next), so app/headless pairs spread from 0.67 to 1.23 and a 5%
target could not be told from the swing. Here the app (in tmux, on its Train tab, as a user
runs it) and a headless run of the same config start together, and one is frozen whole (every
thread, the UI's included) while the other trains an epoch, then they swap: epoch k of the app
and epoch k of headless ran seconds apart, at the same machine speed. Each epoch's time is the
engine's epoch_time_s less the time its process spent frozen in it.

Freezing uses the kernel's cgroup freezer (v1 or v2; needs root), not SIGSTOP: Textual answers
SIGCONT by setting the terminal up again and repainting, which a real run never pays. An
earlier version paused each run through its control channel instead; a paused app's UI kept
working on its own clock (0.08 s of the UI thread per 1.4 s turn, measured from /proc), so
half the UI's cost fell on headless's turns and the ratio read high.

A frozen process does nothing, so neither run's idle work lands on the other's turn. What is
left leans against the app: on thawing, each of the app's timers that missed a tick fires once.
The headless run writes to a pipe (its plain progress lines), not a terminal: a little cheaper
than a live progress bar. With --presses, keys are pressed (about two a second, the Log and
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
import bench_key_latency as bkl
from bench_tui_overhead import _dataset


class Freezer:
    """One process (its threads and any children) in a cgroup of its own, frozen and thawed on
    demand."""

    def __init__(self, name: str, pids: list[int]) -> None:
        self.root, self.v2 = _freezer_root()
        self.dir = self.root / f"tui-nn-interleaved-{os.getpid()}-{name}"
        try:
            self.dir.mkdir()
        except OSError as exc:
            raise SystemExit(f"cannot make a cgroup in {self.root} ({exc.strerror}): this "
                             "benchmark freezes each run in turn and needs root") from None
        for pid in pids:  # one at a time: the file takes one pid per write
            (self.dir / "cgroup.procs").write_text(str(pid))

    def freeze(self) -> None:
        self._write(True)
        deadline = time.monotonic() + 5
        while not self._is_frozen():
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.dir} did not freeze within 5 s")
            time.sleep(0.001)

    def thaw(self) -> None:
        self._write(False)

    def close(self) -> None:
        self._write(False)
        try:
            for pid in (self.dir / "cgroup.procs").read_text().split():
                try:
                    (self.root / "cgroup.procs").write_text(pid)
                except OSError:  # exited meanwhile
                    pass
            self.dir.rmdir()
        except OSError:
            pass

    def _write(self, frozen: bool) -> None:
        if self.v2:
            (self.dir / "cgroup.freeze").write_text("1" if frozen else "0")
        else:
            (self.dir / "freezer.state").write_text("FROZEN" if frozen else "THAWED")

    def _is_frozen(self) -> bool:
        if self.v2:
            return "frozen 1" in (self.dir / "cgroup.events").read_text()
        return (self.dir / "freezer.state").read_text().strip() == "FROZEN"


def _freezer_root() -> tuple[Path, bool]:
    """The cgroup freezer's root: v1's freezer hierarchy, else the cgroup2 mount."""
    v1 = Path("/sys/fs/cgroup/freezer")
    if (v1 / "cgroup.procs").exists():
        return v1, False
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return Path(fields[1]), True
    raise SystemExit("this benchmark freezes each run in turn with the cgroup freezer: no "
                     "cgroup freezer is mounted here")


def take_turns(args, runs: dict[str, tuple[Path, Freezer]]
               ) -> tuple[int, dict[str, list[float]]]:
    """Headless trains epoch k, then the app trains epoch k, and so on (the app is frozen and
    headless running on entry). Returns the presses, and each side's turns: the seconds from
    being thawed to its epoch's record (headless's first turn from its start)."""
    presses, turns = 0, {"headless": [], "app": []}
    for epoch in range(args.epochs):
        for side in ("headless", "app"):
            run_dir, freezer = runs[side]
            if side == "app" or epoch:
                freezer.thaw()
            t0 = time.monotonic()
            press = args.presses and side == "app" and epoch % 2 == 1
            presses += wait_epoch(run_dir, epoch + 1, press, args.poll_ms / 1000, presses)
            turns[side].append(time.monotonic() - t0)
            if epoch + 1 < args.epochs:
                freezer.freeze()
    return presses, turns


def wait_epoch(run_dir: Path, done: int, press: bool, poll_s: float, pressed: int) -> int:
    """Until run_dir has `done` epochs (checked every 10 ms, also between presses: the run is
    frozen as soon as its epoch ends); pressing keys meanwhile when asked, the Log and Train
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


def app_pids() -> list[int]:
    """The app's processes: the tmux pane's process and its descendants (a shell may stand
    between; cgroup membership passes only to processes forked after the move)."""
    out = bkl.tmux("display-message", "-p", "-t", bkl.SESSION, "#{pane_pid}").strip()
    return list(bkl._process_tree(int(out)))


def start_headless(args, run_dir: Path) -> subprocess.Popen:
    argv = bkl.child_argv(args, "headless", run_dir)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(bkl.ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


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
    _freezer_root()  # before anything starts
    load0 = os.getloadavg()[0]
    _dataset(args)  # generated once, outside the runs
    with tempfile.TemporaryDirectory(prefix="tui-nn-interleaved-") as tmp:
        app_dir, head_dir = Path(tmp) / "app", Path(tmp) / "headless"
        presses, turns = run_both(args, app_dir, head_dir)
    report(args, turns["app"], turns["headless"], presses, load0)


def run_both(args, app_dir: Path, head_dir: Path) -> tuple[int, dict[str, list[float]]]:
    """Presses made, and each side's turns (see take_turns)."""
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    bkl.start_session(bkl.child_argv(args, "app", app_dir, train=True), cols, rows)
    headless, freezers = None, []
    try:
        bkl.wait_for(app_dir.with_suffix(".ready"), args.timeout)
        freezers.append(Freezer("app", app_pids()))
        freezers[0].freeze()  # headless starts (and warms up) alone
        headless = start_headless(args, head_dir)
        freezers.append(Freezer("headless", [headless.pid]))
        presses, turns = take_turns(args, {"app": (app_dir, freezers[0]),
                                           "headless": (head_dir, freezers[1])})
        if headless.wait(args.timeout) != 0:
            raise SystemExit(f"headless failed: {headless.stderr.read()[-2000:]}")
        bkl.wait_gone(args.timeout)
        bkl.epoch_times(app_dir), bkl.epoch_times(head_dir)  # both finished?
    finally:
        for freezer in freezers:
            freezer.close()
        if headless is not None:
            headless.kill()
        bkl.kill_session()
    return presses, turns


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
