"""The run directory: the durable record of a run, and the one place its layout is defined.

    config.json     the run's settings, written once when the run is created (atomically)
    metrics.jsonl   one JSON event per line, appended whole (a torn line is cut back)
    last.pt         the newest checkpoint (step 0 onwards; atomic: temp, fsync, rename)
    best.pt         the weights of the best epoch so far, written before the next epoch starts
    .lock           flock'ed by the process that trains, for the run's life (pid inside)
    control.sock    the run's control channel while it trains (engine/channel.py, mode 0600)

A directory belongs to one run: a new run refuses a directory that holds one, and a second
process refuses a run whose lock is held. Readers (`runs`, `watch`) never take the lock.

One permission rule: every file a run writes is created 0600 (owner only: checkpoints hold the
weights, the socket steers the run). A process writes only into a run directory it owns that
no other user can write to (checked as ssh checks ~/.ssh): another user could otherwise rename
last.pt or delete best.pt under it.

metrics.jsonl is strict JSON: a NaN or infinite number is written as the string "NaN",
"Infinity" or "-Infinity" (engine/schema.py reads those and the bare tokens of older files).
Torch-free: `tui_nn.runs` reads the layout from here.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import time
from pathlib import Path
from typing import Any

from tui_nn.engine import jsonl, schema
from tui_nn.fsio import (DiskWriteError, append_line, atomic_write_text, cut_torn_tail,
                         open_append_nofollow, remove_stale_temps)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, the refusal rests on the files
    fcntl = None

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
LOCK_FILE = ".lock"
# Files that say "a run lives here": a new run never writes into a directory holding one.
RUN_FILES = (CONFIG_FILE, METRICS_FILE, LAST_CHECKPOINT, BEST_CHECKPOINT)
# Targets of atomic writes, whose temp files a killed writer can leave behind.
ATOMIC_TARGETS = (CONFIG_FILE, LAST_CHECKPOINT, BEST_CHECKPOINT)


class RunDirError(Exception):
    """The directory cannot be used for this run; the message says why and what to do."""


def _slug(text: str) -> str:
    text = text.replace(os.sep, "-")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40] or "run"


def new_run_path(root: str | Path, model: str, dataset: str, *, reserve: bool = False) -> Path:
    """A fresh path runs/<time>-<model>-<dataset>[-N] that does not exist yet. reserve=True
    creates it (mkdir, atomic): runs started in the same second by several processes each get
    their own directory, never one another's."""
    root = Path(root)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{_slug(Path(model).stem if '/' in model else model)}-{_slug(dataset)}"
    path, n = root / base, 2
    while True:
        if not reserve and not (path.exists() or path.is_symlink()):
            return path
        if reserve:
            try:
                root.mkdir(parents=True, exist_ok=True)
                path.mkdir()
                return path
            except FileExistsError:
                pass
            except OSError as e:
                raise RunDirError(f"cannot create run directory {path}: {e.strerror}") from None
        path, n = root / f"{base}-{n}", n + 1


def check_owner(path: str | Path) -> None:
    """RunDirError unless path is a directory this user owns and others cannot write to."""
    try:
        st = os.stat(path)  # a symlinked run directory is judged by the directory it names
    except FileNotFoundError:
        return
    except OSError as e:
        raise RunDirError(f"cannot use {path}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise RunDirError(f"{path} is not a directory")
    if st.st_uid != os.geteuid():
        raise RunDirError(f"{path} is owned by another user (uid {st.st_uid}): tui-nn writes "
                          "runs only into directories you own")
    if st.st_mode & stat.S_IWOTH:
        raise RunDirError(f"{path} is writable by every user (mode {stat.S_IMODE(st.st_mode):o})"
                          f": another user could replace its checkpoints; chmod o-w {path}")


def check_new_run_dir(path: str | Path) -> None:
    """Refuse a --run-dir that already holds a run (or files with our names), before any work."""
    p = Path(path)
    if (p.exists() or p.is_symlink()) and not p.is_dir():
        raise RunDirError(f"--run-dir {p} exists and is not a directory")
    check_owner(p)
    found = [name for name in RUN_FILES if os.path.lexists(p / name)]
    if found and lock_is_held(p):
        raise RunDirError(f"{p} is in use by process {lock_holder(p) or '?'} (a run is training "
                          "there); watch it with `tui-nn watch` or choose another --run-dir")
    if found:
        raise RunDirError(
            f"{p} already holds a run ({', '.join(found)}): continue it with "
            f"`tui-nn train --resume {p}`, or choose a new --run-dir")


def run_dir_of(path: str | Path) -> Path:
    """The run directory that --resume PATH means: the directory itself, or the run holding a
    file of it (last.pt, best.pt, config.json, metrics.jsonl)."""
    p = Path(path)
    return p.parent if p.is_file() or p.is_symlink() else p


def checkpoint_file_given(path: str | Path) -> Path | None:
    """--resume FILE.pt that is not one of the run's own files: that checkpoint, to be loaded
    (and refused in words when it is not one). None for a directory or a run's own file."""
    p = Path(path)
    if (p.is_file() or p.is_symlink()) and p.name not in (BEST_CHECKPOINT, CONFIG_FILE,
                                                          METRICS_FILE, LOCK_FILE):
        return p
    return None


def lock_is_held(path: str | Path) -> bool:
    """Whether a live process holds the run's lock (probed with a non-blocking flock that is
    released at once; only for a process about to take the lock itself, never for viewers)."""
    if fcntl is None:
        return False
    try:
        # O_NONBLOCK: a FIFO planted as .lock would block a plain open forever.
        fd = os.open(Path(path) / LOCK_FILE,
                     os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's lock
    return False


def lock_holder(path: str | Path) -> int | None:
    """The pid written in a run's lock file (whether or not it still holds it)."""
    try:
        with jsonl.open_regular(Path(path) / LOCK_FILE) as f:
            text = f.read(32).decode("ascii", "replace").strip()
    except (OSError, jsonl.BadJsonFile):
        return None
    return int(text) if text.isdigit() else None


class RunDir:
    """Owns one run directory for one process: the lock, the metrics appends, config and
    checkpoint paths. Create with RunDir.create (a new run) or RunDir.reopen (a resume)."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """A plain writer of path (tests and tools); training claims runs with create/reopen,
        which also take the lock and refuse a used directory."""
        self.path = Path(path)
        self._metrics_fd: int | None = None
        self._lock_fd: int | None = None
        if create:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise RunDirError(f"cannot create run directory {self.path}: "
                                  f"{e.strerror}") from None

    @classmethod
    def create(cls, path: str | Path) -> "RunDir":
        """Claim path for a new run: refuses one that holds a run or is locked, or that
        another user owns or can write to."""
        check_new_run_dir(path)
        run = cls(path)
        run._lock()
        try:
            check_new_run_dir(path)  # a second process may have created the run meanwhile
        except RunDirError:
            run.close()
            raise
        return run

    @classmethod
    def new(cls, root: str | Path, model: str, dataset: str) -> "RunDir":
        return cls.create(new_run_path(root, model, dataset, reserve=True))

    @classmethod
    def reopen(cls, path: str | Path) -> "RunDir":
        """Claim an existing run to continue it: lock, cut a torn last line, drop stale temps."""
        if not Path(path).is_dir():
            raise RunDirError(f"--resume: {path} is not a run directory")
        check_owner(path)
        run = cls(path, create=False)
        run._lock()
        cut_torn_tail(run.metrics_path)
        return run

    def _lock(self) -> None:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path / LOCK_FILE, flags | os.O_NONBLOCK, 0o600)
        except OSError as e:
            raise RunDirError(f"cannot lock {self.path / LOCK_FILE}: {e.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunDirError(f"cannot lock {self.path / LOCK_FILE}: not a regular file")
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                holder = lock_holder(self.path)
                who = f"process {holder}" if holder else "another process"
                raise RunDirError(f"{self.path} is in use by {who} (a run is training there); "
                                  "watch it with `tui-nn watch` or choose another "
                                  "--run-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        remove_stale_temps(self.path, ATOMIC_TARGETS)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def last_checkpoint(self) -> Path:
        return self.path / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.path / BEST_CHECKPOINT

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_text(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def append_metrics(self, record: dict[str, Any]) -> None:
        """One whole line per record; raises DiskWriteError (the line is then absent)."""
        if self._metrics_fd is None:
            self._metrics_fd = open_append_nofollow(self.metrics_path)
        line = (json.dumps(strict_json(record), separators=(",", ":"), allow_nan=False)
                + "\n").encode()
        append_line(self._metrics_fd, line, self.metrics_path)

    def close(self) -> None:
        """Close metrics.jsonl and release the lock (the kernel does both on kill -9)."""
        if self._metrics_fd is not None:
            os.close(self._metrics_fd)
            self._metrics_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def strict_json(value: Any) -> Any:
    """value with each non-finite float spelled as a string, so json.dumps writes JSON that
    every parser reads (jq, browsers: no bare NaN/Infinity tokens)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Every readable record of a run's metrics.jsonl (engine/jsonl.py: bounded, regular files
    only, a torn or bad line skipped), decoded by engine/schema.py (strings inert, "NaN" and
    "Infinity" as floats; a record with a field of the wrong type skipped)."""
    p = Path(path)
    decoded = (schema.checked(r, require=False)
               for r in jsonl.iter_records(p / METRICS_FILE if p.is_dir() else p))
    return [r for r in decoded if r is not None]


__all__ = ["RunDir", "RunDirError", "DiskWriteError", "check_new_run_dir", "new_run_path",
           "lock_holder", "read_metrics", "CONFIG_FILE", "METRICS_FILE", "LAST_CHECKPOINT",
           "BEST_CHECKPOINT", "LOCK_FILE", "RUN_FILES"]
