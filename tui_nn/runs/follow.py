"""Following a run directory that another process is writing (`tui-nn watch`).

MetricsFollower.poll() costs one os.stat() when nothing changed; when metrics.jsonl grew it
reads only the appended bytes, keeps an unfinished last line for the next poll (the writer may
be between two os.write calls, or killed mid-line) and returns the new records. It opens the
file read-only and never writes anything into the run directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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

    def poll(self) -> list[dict[str, Any]]:
        """New complete records since the last poll (a list, possibly empty). Never raises for
        a missing or damaged file: a missing file gives []."""
        try:
            st = os.stat(self.path)
        except OSError:
            return []
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key == self._stat and not self.behind:
            return []
        if self._stat is not None and (st.st_ino != self._stat[0] or st.st_size < self.offset):
            # Replaced or truncated (not something the engine does): start over.
            self.offset, self._pending = 0, b""
            self.restarts += 1
        self._stat = key
        if st.st_size == self.offset:
            self.behind = False
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(min(st.st_size - self.offset, MAX_READ_BYTES))
        except OSError:
            return []
        self.offset += len(data)
        self.behind = self.offset < st.st_size
        data = self._pending + data
        cut = data.rfind(b"\n") + 1  # 0 when no line is complete yet
        self._pending = data[cut:]
        out = []
        for line in data[:cut].splitlines():
            rec = records.parse(line)
            if rec is not None:
                out.append(rec)
        return out
