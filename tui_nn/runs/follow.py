"""Following a run directory that another process is writing (`tui-nn watch`).

MetricsFollower.poll() costs one os.stat() when nothing changed; when metrics.jsonl grew it
reads only the appended bytes, keeps an unfinished last line for the next poll (the writer may
be between two os.write calls, or killed mid-line) and returns the new records. A line over
jsonl.MAX_LINE_BYTES is dropped as it streams past, never held whole; only a regular file
(not a FIFO, device or symlink) is read. It opens the
file read-only and never writes anything into the run directory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from tui_nn.engine import jsonl
from tui_nn.runs import records

# Read at most this much per poll: a long run's file is caught up over several polls instead
# of one long read (the caller polls again at once while `behind` is True).
MAX_READ_BYTES = 8 * 1024 * 1024


class MetricsFollower:
    """Incremental reader of one run's metrics.jsonl."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = records.metrics_path(run_dir)
        self.offset = 0  # bytes of the file consumed (complete lines + the pending part)
        self._pending = b""  # an unfinished last line
        self._stat: tuple[int, int, int] | None = None  # (inode, size, mtime_ns) last seen
        self.behind = False  # more bytes were there than one poll reads
        self.restarts = 0  # times the file was replaced or truncated and re-read
        self.skipped = 0  # lines skipped: not a record, or over jsonl.MAX_LINE_BYTES
        self.problem: str | None = None  # why the file cannot be read (a FIFO, a symlink)
        self._skipping = False  # the bytes being read belong to a line over the cap

    def poll(self) -> list[dict[str, Any]]:
        """New complete records since the last poll (a list, possibly empty). Never raises for
        a missing or damaged file: a missing file gives []."""
        try:
            st = os.lstat(self.path)
        except OSError:
            return []
        if not stat.S_ISREG(st.st_mode):
            self.problem = f"{self.path} is not a regular file (not read)"
            return []
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key == self._stat and not self.behind:
            return []
        if self._stat is not None and (st.st_ino != self._stat[0] or st.st_size < self.offset):
            # Replaced or truncated (not something the engine does): start over.
            self.offset, self._pending, self._skipping = 0, b"", False
            self.restarts += 1
        self._stat = key
        if st.st_size == self.offset:
            self.behind = False
            return []
        data = self._read(st.st_size)
        if data is None:
            return []
        return self._records(data)

    def _read(self, size: int) -> bytes | None:
        try:
            with jsonl.open_regular(self.path) as f:
                f.seek(self.offset)
                data = f.read(min(size - self.offset, MAX_READ_BYTES))
        except (OSError, jsonl.BadJsonFile) as e:
            self.problem = str(e)
            return None
        self.problem = None
        self.offset += len(data)
        self.behind = self.offset < size
        return data

    def _records(self, data: bytes) -> list[dict[str, Any]]:
        if self._skipping:  # inside a line over the cap: drop bytes up to its end
            nl = data.find(b"\n")
            if nl < 0:
                return []
            data, self._skipping = data[nl + 1:], False
        data = self._pending + data
        cut = data.rfind(b"\n") + 1  # 0 when no line is complete yet
        self._pending = data[cut:]
        if len(self._pending) > jsonl.MAX_LINE_BYTES:
            self._pending, self._skipping = b"", True
            self.skipped += 1
        out = []
        for line in data[:cut].splitlines():
            rec = records.parse(line) if len(line) <= jsonl.MAX_LINE_BYTES else None
            if rec is not None:
                out.append(rec)
            else:
                self.skipped += 1
        return out
