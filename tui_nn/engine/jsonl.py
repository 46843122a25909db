"""Total, bounded readers for JSON files that came from elsewhere (metrics.jsonl, config.json).

A run directory is data written by other programs, copied between machines, or made by hand:
its files may be FIFOs or devices (opening or reading them would hang or never end), symlinks
to anything, a 50 MB single line, or JSON nested deeper than the parser's recursion limit.
Everything here opens regular files only, never holds more than a cap in memory, and turns
every decode failure into a skipped line (counted) or a `BadJsonFile` with a reason in words.

Stdlib only and torch-free (tui_nn.engine's __init__ does not import torch), so the runs layer
and `tui-nn runs` use it too.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

MAX_LINE_BYTES = 1 << 20  # a record longer than this is not one the engine wrote
MAX_JSON_FILE_BYTES = 4 << 20  # config.json is a few KB
MAX_DEPTH = 64  # records are 2-3 levels deep; deeper ones are skipped before anything recurses
_CHUNK = 1 << 16


class BadJsonFile(ValueError):
    """A file that cannot be read as JSON; str() says why in words, fit to show as is."""


@dataclass
class LineStats:
    """What a line reader skipped (a caller shows one warning from these counts)."""

    too_long: int = 0  # lines over the cap, skipped without being read whole
    undecodable: int = 0  # lines that are not a JSON object (parse_record returned None)
    torn: bool = False  # the file ended inside a line (a writer killed mid-write)
    problem: str | None = None  # why the file could not be opened or read at all

    @property
    def skipped(self) -> int:
        return self.too_long + self.undecodable


def open_regular(path: str | Path) -> BinaryIO:
    """Open path for reading if it is a regular file and not a symlink.

    Raises FileNotFoundError when it is absent and BadJsonFile for a symlink, FIFO, device or
    directory. O_NONBLOCK keeps open() of a FIFO from waiting for a writer."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as e:
        if os.path.islink(path):
            raise BadJsonFile(f"{path} is a symlink (not followed)") from None
        raise BadJsonFile(f"cannot open {path}: {e.strerror or e}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "a special file")
            raise BadJsonFile(f"{path} is not a regular file ({kind})")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device",
          stat.S_IFDIR: "a directory"}


def iter_raw_lines(f: BinaryIO, stats: LineStats | None = None,
                   max_line: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """Complete lines (with their newline) of an open binary file. A line longer than max_line
    is skipped as it streams past, so memory stays under max_line + one chunk; a last line
    without its newline is a write that never finished and is not yielded."""
    stats = stats if stats is not None else LineStats()
    buf = bytearray()
    skipping = False
    while chunk := f.read(_CHUNK):
        start = 0
        while (nl := chunk.find(b"\n", start)) >= 0:
            if skipping:
                skipping = False
            elif len(buf) + nl + 1 - start > max_line + 1:
                stats.too_long += 1
            else:
                buf += chunk[start:nl + 1]
                yield bytes(buf)
            buf.clear()
            start = nl + 1
        if not skipping:
            buf += chunk[start:]
            if len(buf) > max_line:
                stats.too_long += 1
                buf.clear()
                skipping = True
    stats.torn = bool(buf) or skipping


def parse_record(line: bytes | str) -> dict[str, Any] | None:
    """One JSON object, or None for anything else: bad JSON, bad UTF-8, nesting past MAX_DEPTH
    (which would make json.loads or a later repr() raise RecursionError), no memory."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    try:
        record = json.loads(line)
    except (ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(record, dict) or not within_depth(record):
        return None
    return record


def within_depth(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when containers nest at most `limit` deep (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return True


def iter_records(path: str | Path, stats: LineStats | None = None,
                 max_line: int = MAX_LINE_BYTES,
                 parse: Callable[[bytes], dict[str, Any] | None] = parse_record,
                 ) -> Iterator[dict[str, Any]]:
    """Every JSON-object line of a JSON-lines file (that `parse` accepts). Nothing raises for bad
    content or a missing, special or unreadable file: what was skipped is counted in stats."""
    stats = stats if stats is not None else LineStats()
    for line in iter_file_lines(path, stats, max_line):
        record = parse(line)
        if record is None:
            stats.undecodable += 1
        else:
            yield record


def iter_file_lines(path: str | Path, stats: LineStats | None = None,
                    max_line: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """iter_raw_lines of the regular file at path. A missing file gives nothing; a special,
    symlinked or unreadable one gives nothing and its reason in stats.problem."""
    stats = stats if stats is not None else LineStats()
    try:
        f = open_regular(path)
    except FileNotFoundError:
        return
    except (OSError, BadJsonFile) as e:
        stats.problem = str(e)
        return
    with f:
        try:
            yield from iter_raw_lines(f, stats, max_line)
        except OSError as e:  # e.g. EIO half way: what was read stands
            stats.problem = f"cannot read {path}: {e.strerror or e}"


def read_json_file(path: str | Path, cap: int = MAX_JSON_FILE_BYTES) -> dict[str, Any]:
    """A JSON object from a regular file of at most cap bytes.

    Raises FileNotFoundError when absent, BadJsonFile (a reason in words) for anything else."""
    with open_regular(path) as f:
        try:
            data = f.read(cap + 1)
        except OSError as e:
            raise BadJsonFile(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > cap:
        raise BadJsonFile(f"{path} is larger than {cap // 1024} KiB")
    record = parse_record(data)
    if record is None:
        raise BadJsonFile(f"{path} is not a JSON object")
    return record
