"""Durable file writes, shared by every layer that writes (the run directory, checkpoints,
exports, the digits cache). Standard library only, so the data layer can use it too.

- atomic_write: a unique temp file (mkstemp, O_EXCL: never follows a planted symlink) in the
  target's directory, fsync, rename over the target, fsync of the directory; the temp file is
  removed on any failure, so a crash or a full disk leaves the previous file intact.
- append_line: a whole line or nothing (a short write is cut back), never through a symlink.
- DiskWriteError: what every write failure becomes, with the path and the free space in words.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Callable

TEMP_SUFFIX = ".tmp"


class DiskWriteError(OSError):
    """A write failed; str() is a user-facing sentence naming the file and the free space."""

    def __init__(self, path: str | Path, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.path = Path(path)
        self.cause = cause

    def __str__(self) -> str:
        reason = self.cause.strerror or str(self.cause) or type(self.cause).__name__
        if self.cause.errno == errno.ELOOP:
            reason = "it is a symlink (tui-nn never writes through links)"
        free = free_space(self.path.parent)
        where = f" ({_decimal_size(free)} free)" if free is not None else ""
        return f"{reason.lower()} writing {self.path}{where}"


def cache_dir() -> Path:
    """Where tui-nn keeps what it can compute again (generated data, summaries of logs)."""
    env = os.environ.get("TUI_NN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tui-nn"


def free_space(directory: str | Path) -> int | None:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def _decimal_size(n: int) -> str:
    """3100000 -> '3.1 MB' (disk tools speak decimal)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


class _WholeWrites:
    """A file wrapper whose write() writes everything or raises: torch.save's C++ writer turns
    a short write into an opaque 'unexpected pos' error, and a full disk shows up as exactly
    that. Looping here makes the kernel's ENOSPC surface as the OSError it is."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.error: OSError | None = None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        total = view.nbytes
        try:
            while view:
                n = self._f.write(view)
                if n is None or n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[n:]
        except OSError as e:
            self.error = self.error or e
            raise
        return total

    def flush(self) -> None:
        self._f.flush()

    def fileno(self) -> int:
        return self._f.fileno()


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write path through write(file) atomically; raises DiskWriteError on any OS failure."""
    path = Path(path)
    if path.is_symlink():
        raise DiskWriteError(path, OSError(errno.ELOOP, "symlink"))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise DiskWriteError(path, e) from None
    sink = None
    try:
        with os.fdopen(fd, "wb", buffering=0) as raw:
            sink = _WholeWrites(raw)
            write(sink)
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        _unlink_quietly(tmp)
        cause = sink.error if sink is not None and sink.error is not None else e
        if isinstance(cause, OSError):
            raise DiskWriteError(path, cause) from None
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def fsync_dir(path: str | Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str | Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def remove_stale_temps(directory: str | Path, names: tuple[str, ...]) -> None:
    """Delete temp files that atomic_write left for these target names (a writer killed
    mid-write). Only call it while no other process can be writing there (the run's lock)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if not entry.name.endswith(TEMP_SUFFIX) or entry.is_dir(follow_symlinks=False):
            continue
        if any(entry.name.startswith(f".{name}.") for name in names):
            _unlink_quietly(entry.path)


def open_append_nofollow(path: str | Path) -> int:
    """An O_APPEND descriptor that refuses to open a symlink (ELOOP -> DiskWriteError) or to
    wait on a FIFO; the file is owner-only (0600), as atomic_write's temp files are."""
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
             | os.O_NONBLOCK)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as e:
        raise DiskWriteError(path, e) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DiskWriteError(path, OSError(errno.EINVAL, "not a regular file"))
        os.set_blocking(fd, True)
        # An older run's 0644 file follows the one rule too; another user's file we may
        # append to keeps its mode (theirs to set).
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_line(fd: int, line: bytes, path: str | Path) -> None:
    """Append one complete line or nothing: a short write (a full disk) is cut back to where
    the line began, so readers never see half a record glued to the next one."""
    start = os.fstat(fd).st_size
    view = memoryview(line)
    try:
        while view:
            n = os.write(fd, view)
            if n <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[n:]
    except OSError as e:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise DiskWriteError(path, e) from None


def cut_torn_tail(path: str | Path) -> bool:
    """If the file's last line has no newline (a writer killed mid-line), cut it off so the next
    append starts on a line of its own. Returns whether anything was cut."""
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise DiskWriteError(path, e) from None
    try:
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return False
        keep, pos, chunk = 0, size, 65536
        while pos > 0:
            start = max(0, pos - chunk)
            block = os.pread(fd, pos - start, start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            pos = start
        os.ftruncate(fd, keep)
        return True
    finally:
        os.close(fd)
