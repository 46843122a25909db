"""The control channel of a live run under a flood (issue 26): a slow-loris client (one byte
every 1.5 s, reconnecting when dropped), 50 idle clients (each reconnecting when dropped),
1,000 bad requests (a 400-digit factor, lr 1e308, not JSON, 100 kB of brackets, an unknown
action, binary noise) and 1,000 good ones (`resume`, a no-op on a running run), the bad sent
at once from 8 threads, the good spread over --seconds from 4 (so that the idle and slow
clients are dropped and come back meanwhile). Prints how many good requests were
answered "ok" and their latency from connect to answer (median, p95, max); the target is
every one answered, median under 0.5 s. The run must still be training at the end.

    python benchmarks/bench_control_flood.py [--good 1000] [--bad 1000] [--idle 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tui_nn.engine.channel import SOCKET_FILE, ChannelError, send

ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
BAD = [b'{"action": "lr", "factor": ' + b"9" * 400 + b"}\n",
       b'{"action": "lr", "factor": 1e308}\n', b"not json\n", b"[" * 100_000 + b"\n",
       b'{"action": "dance"}\n', bytes(range(256)) + b"\n"]


def _connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    return s


def _slow_loris(path: Path, done: threading.Event, drops: list[int]) -> None:
    s = _connect(path)
    s.setblocking(False)
    while not done.wait(1.5):
        try:
            s.send(b"{")
        except OSError:  # dropped by the channel: come back, as an attacker would
            drops.append(1)
            s.close()
            s = _connect(path)
            s.setblocking(False)
    s.close()


def _idle(path: Path, n: int, done: threading.Event, drops: list[int]) -> None:
    socks: list[socket.socket | None] = [None] * n
    while not done.wait(0.2):
        for i, s in enumerate(socks):
            if s is not None:
                try:
                    s.recv(4096)  # returns (an answer or EOF) once the channel dropped it
                    drops.append(1)
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                s.close()
            try:
                socks[i] = _connect(path)
                socks[i].setblocking(False)
            except OSError:  # a channel that does not accept (main before issue 26)
                socks[i] = None
    for s in socks:
        if s is not None:
            s.close()


def _bad(path: Path, i: int) -> bool:
    """True when the channel answered the bad request (with an error)."""
    try:
        with _connect(path) as s:
            s.sendall(BAD[i % len(BAD)])
            return s.makefile("rb").readline().startswith(b'{"ok": false')
    except OSError:
        return False  # e.g. EPIPE: 100 kB sent to a channel that stopped reading at 4 kB


def _good(run: Path, at: float) -> float | None:
    time.sleep(max(0.0, at - time.monotonic()))
    t0 = time.monotonic()
    try:
        ok = send(run, "resume", timeout=10).get("ok") is True
    except ChannelError:
        return None
    return time.monotonic() - t0 if ok else None


def _start(run: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tui_nn", "train", "curve", "--epochs",
                             "1000000", "--headless", "--run-dir", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    deadline = time.monotonic() + 120
    while not (run / SOCKET_FILE).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the run did not start: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=1000)
    parser.add_argument("--bad", type=int, default=1000)
    parser.add_argument("--idle", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="the good requests spread over this long, so that idle and slow "
                        "clients are dropped (and come back) while they are sent")
    args = parser.parse_args()
    run = Path(tempfile.mkdtemp()) / "run"
    proc = _start(run)
    path, done, drops = run / SOCKET_FILE, threading.Event(), []
    attackers = [threading.Thread(target=_slow_loris, args=(path, done, drops)),
                 threading.Thread(target=_idle, args=(path, args.idle, done, drops))]
    try:
        for t in attackers:
            t.start()
        time.sleep(1.0)  # the idle clients are connected before the first good request
        started, pace = time.monotonic(), args.seconds / args.good
        with ThreadPoolExecutor(8) as bad_pool, ThreadPoolExecutor(4) as good_pool:
            bad = bad_pool.map(lambda i: _bad(path, i), range(args.bad))
            good = list(good_pool.map(lambda i: _good(run, started + i * pace), range(args.good)))
            bad = list(bad)
        elapsed = time.monotonic() - started
        done.set()
        for t in attackers:
            t.join()
        alive = proc.poll() is None
    finally:
        proc.kill()
        proc.wait()
    times = sorted(t for t in good if t is not None)
    print(f"load {os.getloadavg()[0]:.1f}, {elapsed:.1f} s of flood, {len(drops)} idle/slow "
          f"clients dropped by the channel")
    print(f"good: {len(times)}/{args.good} answered ok; latency median "
          f"{statistics.median(times) * 1e3:.0f} ms, p95 {times[int(0.95 * len(times))] * 1e3:.0f}"
          f" ms, max {times[-1] * 1e3:.0f} ms" if times else f"good: 0/{args.good} answered")
    print(f"bad: {sum(bad)}/{args.bad} answered with an error; run still training: {alive}")
    if len(times) < args.good or not alive:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
