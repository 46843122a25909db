"""Is a run's process still alive? Decided without a pid file.

The trainer holds metrics.jsonl open for writing (O_APPEND) from its first event until it
returns, so a process that has that file open for writing *is* the training process. Readers
(`tail -f`, `tui-nn watch`) open it read-only and do not count.

psutil tells an open file's mode on Linux only, so the scan runs there, and sees only the
processes we may inspect: our own (or all, as root). So it is trusted for runs whose
metrics.jsonl we own; anywhere else (macOS, Windows, another user's run, a process in another
mount namespace) the fallback is the file's age: written in the last `window_s` seconds means
running. A paused run writes nothing, so the fallback calls a long pause "interrupted"; the
scan does not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from tui_nn.engine.rundir import METRICS_FILE

DEFAULT_LIVE_WINDOW_S = 120.0


def _written_files(proc: psutil.Process) -> Iterator[str]:
    """Paths proc has open for writing; none when it cannot be inspected (another user's
    process, or it just exited)."""
    try:
        files = proc.open_files()
    except (psutil.Error, OSError):
        return
    for f in files:
        if f.flags & os.O_ACCMODE != os.O_RDONLY:
            yield f.path


def writers_of_metrics_files() -> set[str] | None:
    """Real paths of every metrics.jsonl that a visible process has open for writing; None
    when this platform cannot tell a writer from a reader."""
    if not psutil.LINUX:
        return None
    return {path for proc in psutil.process_iter() for path in _written_files(proc)
            if os.path.basename(path) == METRICS_FILE}


def writer_pid(metrics: str | Path) -> int | None:
    """The pid of a visible process holding this metrics.jsonl open for writing (the training
    process; rank 0 of a distributed run), or None. Scans every process: call it now and then,
    not in a loop (still_writing() re-checks a known pid cheaply)."""
    if not psutil.LINUX:
        return None
    target = os.path.realpath(metrics)
    for proc in psutil.process_iter():
        if target in _written_files(proc):
            return proc.pid
    return None


def still_writing(pid: int, metrics: str | Path) -> bool:
    """Whether process pid still holds this metrics.jsonl open for writing."""
    if not psutil.LINUX:
        return False
    try:
        proc = psutil.Process(pid)
    except (psutil.Error, OSError):
        return False
    return os.path.realpath(metrics) in _written_files(proc)


def scan_is_trusted(metrics: Path) -> bool:
    """Whether the scan can see whoever writes this file (Linux, and we own it or are root)."""
    if not psutil.LINUX:
        return False
    try:
        return os.geteuid() == 0 or metrics.stat().st_uid == os.geteuid()
    except OSError:
        return False


def is_alive(run_dir: Path, last_update: float | None, writers: set[str] | None,
             window_s: float = DEFAULT_LIVE_WINDOW_S, now: float | None = None) -> bool:
    metrics = run_dir / METRICS_FILE
    if writers is not None and metrics.exists() and scan_is_trusted(metrics):
        return os.path.realpath(metrics) in writers
    if last_update is None:
        return False
    return (now if now is not None else time.time()) - last_update <= window_s
