"""Is a run's process still alive? Decided without a pid file.

The trainer holds metrics.jsonl open for writing (O_APPEND) from its first event until it
returns, so on Linux a process whose /proc/PID/fd has that file open for writing *is* the
training process. Readers (`tail -f`, `tui-nn watch`) open it read-only and do not count.

That scan sees only the processes we may inspect: our own (or all, as root). So it is trusted
for runs whose metrics.jsonl we own; anywhere else (macOS, Windows, another user's run, a
process in another mount namespace) the fallback is the file's age: written in the last
`window_s` seconds means running. A paused run writes nothing, so the fallback calls a long
pause "interrupted"; the scan does not.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

DEFAULT_LIVE_WINDOW_S = 120.0


def writers_of_metrics_files() -> set[str] | None:
    """Real paths of every metrics.jsonl that a visible process has open for writing; None
    when there is no /proc to look in."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    found: set[str] = set()
    try:
        pids = [e.name for e in os.scandir(proc) if e.name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # another user's process, or it just exited
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.endswith("/metrics.jsonl") and _open_for_writing(pid, fd):
                found.add(target)
    return found


def writer_pid(metrics: str | Path) -> int | None:
    """The pid of a visible process holding this metrics.jsonl open for writing (the training
    process; rank 0 of a distributed run), or None. Scans /proc: call it now and then, not in a
    loop (still_writing() re-checks a known pid cheaply)."""
    target = os.path.realpath(metrics)
    proc = Path("/proc")
    try:
        pids = [e.name for e in os.scandir(proc) if e.name.isdigit()]
    except OSError:
        return None
    for pid in pids:
        if _holds_for_writing(pid, target):
            return int(pid)
    return None


def still_writing(pid: int, metrics: str | Path) -> bool:
    """Whether process pid still holds this metrics.jsonl open for writing."""
    return _holds_for_writing(str(pid), os.path.realpath(metrics))


def _holds_for_writing(pid: str, target: str) -> bool:
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"{fd_dir}/{fd}") == target and _open_for_writing(pid, fd):
                return True
        except OSError:
            continue
    return False


def _open_for_writing(pid: str, fd: str) -> bool:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}") as f:
            for line in f:
                if line.startswith("flags:"):
                    return int(line.split()[1], 8) & os.O_ACCMODE != os.O_RDONLY
    except (OSError, ValueError, IndexError):
        pass
    return False


def scan_is_trusted(metrics: Path) -> bool:
    """Whether the /proc scan can see whoever writes this file (we own it, or we are root)."""
    if not hasattr(os, "geteuid"):
        return False
    try:
        return os.geteuid() == 0 or metrics.stat().st_uid == os.geteuid()
    except OSError:
        return False


def is_alive(run_dir: Path, last_update: float | None, writers: set[str] | None,
             window_s: float = DEFAULT_LIVE_WINDOW_S, now: float | None = None) -> bool:
    metrics = run_dir / "metrics.jsonl"
    if writers is not None and metrics.exists() and scan_is_trusted(metrics):
        return os.path.realpath(metrics) in writers
    if last_update is None:
        return False
    return (now if now is not None else time.time()) - last_update <= window_s
