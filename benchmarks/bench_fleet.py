"""Runs on several machines over ssh (issue 28): a real sshd on a loopback port (tests/sshd.py)
reached under 4 Host aliases, so each "host" has its own ControlMaster, × 10 runs each.

    python benchmarks/bench_fleet.py [--runs-per-host 10] [--repeat 5]

1. `tui-nn runs box1:R1 ... box4:R4`, a fresh CLI process each time (cold: new connections,
   nothing mirrored). Target: under 5 s.
2. The same listing in one process with warm connections: with an empty mirror (every file
   crosses) and with a full one (nothing new). Target: under 2 s.
3. One run's refresh after one epoch was appended to its metrics.jsonl: file bytes read and
   every byte the remote commands printed, against the appended bytes. Target: within 2x
   the appended bytes plus framing.
4. `control pause`/`resume` round trip on a live headless run through the warm master
   (median), and one cold `tui-nn control` process. Target: median under 0.5 s warm.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import sshd  # noqa: E402

from tui_nn.runs import remote, ssh  # noqa: E402

HOSTS = ("box1", "box2", "box3", "box4")


def make_runs(base: Path, per_host: int) -> list[Path]:
    """One trained run copied per_host times into each host's root."""
    seed = base / "seed"
    subprocess.run([sys.executable, "-m", "tui_nn", "train", "curve", "--epochs", "3",
                    "--headless", "--run-dir", str(seed)], check=True, capture_output=True)
    roots = []
    for h in HOSTS:
        root = base / h
        for i in range(per_host):
            shutil.copytree(seed, root / f"run-{i:02d}")
        roots.append(root)
    return roots


def cold_listing(server, roots: list[Path], repeat: int) -> list[float]:
    args = [f"{h}:{r}" for h, r in zip(HOSTS, roots)]
    expected = sum(len(list(r.iterdir())) for r in roots)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "tui_nn", "runs", *args],
                             capture_output=True, text=True, env=server.env())
        times.append(time.perf_counter() - started)
        assert out.returncode == 0 and out.stdout.count("finished") == expected, out.stderr
    return times


def warm_listing(targets, repeat: int, empty_mirror: bool) -> list[float]:
    times = []
    for _ in range(repeat):
        if empty_mirror:
            remote._MIRRORS.clear()
        started = time.perf_counter()
        listings = remote.list_remote(targets)
        times.append(time.perf_counter() - started)
        assert all(ls.error is None for ls in listings), [ls.error for ls in listings]
    return times


def appended_epoch(server, run: Path) -> tuple[int, int, int]:
    """(appended bytes, file bytes read, all bytes the remote commands printed)."""
    printed = [0]
    real_run = ssh.Host.run

    def counting(self, script, timeout=60.0, max_output=ssh.MAX_OUTPUT):
        out = real_run(self, script, timeout, max_output)
        printed[0] += len(out)
        return out

    target = remote.Target("box1", str(run))
    mirror = remote.mirror(target)
    mirror.refresh()
    lines = (run / "metrics.jsonl").read_bytes().splitlines(keepends=True)
    epoch = [ln for ln in lines if b'"epoch":0' in ln and b'"type":"StepMetrics"' in ln]
    epoch += [ln for ln in lines if b'"type":"EpochMetrics"' in ln][:1]
    chunk = b"".join(epoch)
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(chunk)
    os.utime(run / "metrics.jsonl", (time.time() + 1, time.time() + 1))
    ssh.Host.run = counting
    try:
        listing = mirror.refresh()
    finally:
        ssh.Host.run = real_run
    return len(chunk), listing.bytes_read, printed[0]


def control_round_trips(server, base: Path, repeat: int) -> tuple[list[float], float]:
    run = base / "live"
    proc = subprocess.Popen([sys.executable, "-m", "tui_nn", "train", "curve", "--epochs",
                             "100000", "--headless", "--run-dir", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run / "control.sock").exists():
            if time.monotonic() > deadline:
                raise SystemExit("the live run never opened its control channel")
            time.sleep(0.1)
        target = remote.Target("box2", str(run))
        remote.send_control(target, "resume", None)  # the master starts here (not timed)
        warm = []
        for i in range(repeat):
            started = time.perf_counter()
            answer = remote.send_control(target, "pause" if i % 2 == 0 else "resume", None)
            warm.append(time.perf_counter() - started)
            assert answer.get("ok"), answer
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "tui_nn", "control", f"box3:{run}",
                              "resume"], capture_output=True, text=True, env=server.env())
        cold = time.perf_counter() - started
        assert out.returncode == 0, out.stderr
        return warm, cold
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-per-host", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if sshd.MISSING:
        raise SystemExit(sshd.MISSING)
    base = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    hang = sshd.SilentListener()
    server = sshd.start_sshd(base / "ssh", hang.port, aliases=HOSTS)
    os.environ["TUI_NN_SSH_CONFIG"] = str(server.config)
    try:
        roots = make_runs(base, args.runs_per_host)
        targets = [remote.Target(h, str(r)) for h, r in zip(HOSTS, roots)]
        cold = cold_listing(server, roots, args.repeat)
        print(f"runs, {len(HOSTS)} hosts x {args.runs_per_host} runs, cold CLI: median "
              f"{statistics.median(cold):.2f} s (all: {', '.join(f'{t:.2f}' for t in cold)})")
        warm_listing(targets, 1, empty_mirror=True)  # the masters start here
        fresh = warm_listing(targets, args.repeat, empty_mirror=True)
        full = warm_listing(targets, args.repeat, empty_mirror=False)
        print(f"runs, warm connections: empty mirror median {statistics.median(fresh):.2f} s, "
              f"nothing new median {statistics.median(full):.2f} s")
        appended, read, printed = appended_epoch(server, roots[0] / "run-00")
        print(f"one epoch appended: {appended} B; file bytes read {read} B; all bytes the "
              f"remote printed {printed} B ({printed / appended:.2f}x)")
        warm, cold_ctl = control_round_trips(server, base, max(args.repeat, 10))
        print(f"control round trip, warm master: median {statistics.median(warm) * 1000:.0f} ms "
              f"(max {max(warm) * 1000:.0f} ms, n={len(warm)}); cold CLI {cold_ctl:.2f} s")
    finally:
        ssh._REGISTRY.close_all()
        sshd.stop(server)
        hang.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
