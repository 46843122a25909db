"""Reading metrics.jsonl without trusting it: a killed writer can leave a torn last line, a
crashed disk a garbled one, another program anything at all (a FIFO, a 50 MB line, JSON nested
past the recursion limit). All of it is skipped through tui_nn.engine.jsonl's bounded readers;
nothing here raises for bad content.

This package never imports the trainer (torch): it knows the event records only by their JSON
shape, so `tui-nn runs` stays fast. tui_nn.engine.jsonl is stdlib only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Iterable, Iterator

from tui_nn.engine import jsonl
from tui_nn.engine import schema
from tui_nn.engine.rundir import CONFIG_FILE, METRICS_FILE
from tui_nn.textsafe import clean_line

# RunDir writes json.dumps(record, separators=(",", ":")) with "type" first, so the type of a
# record can be read off its first bytes without parsing the (possibly long) rest.
_TYPE_PREFIX = b'{"type":"'


def metrics_path(run_dir: str | Path) -> Path:
    p = Path(run_dir)
    return p if p.name == METRICS_FILE else p / METRICS_FILE


def iter_lines(path: str | Path,
               stats: jsonl.LineStats | None = None) -> Iterator[tuple[str | None, bytes]]:
    """(type, raw line) for every complete line of at most jsonl.MAX_LINE_BYTES; type is None
    when the prefix is unusual. A missing, special (FIFO, device) or symlinked file gives
    nothing (and the reason in stats.problem). A last line without its newline is a write
    that never finished: skipped."""
    for line in jsonl.iter_file_lines(path, stats):
        yield _peek_type(line), line


def _peek_type(line: bytes) -> str | None:
    if not line.startswith(_TYPE_PREFIX):
        return None
    end = line.find(b'"', len(_TYPE_PREFIX), len(_TYPE_PREFIX) + 64)
    return line[len(_TYPE_PREFIX):end].decode("ascii", "replace") if end > 0 else None


def parse(line: bytes) -> dict[str, Any] | None:
    """An event record (a JSON object with a string "type" and, for the types the views
    read, the fields it has of the right types: see schema), or None; never raises."""
    record = jsonl.parse_record(line)
    if record is None or not isinstance(record.get("type"), str):
        return None
    return schema.checked(record, require=False)


def iter_records(path: str | Path,
                 stats: jsonl.LineStats | None = None) -> Iterator[dict[str, Any]]:
    """Every readable record of a metrics.jsonl (or of the one in a run directory)."""
    return jsonl.iter_records(metrics_path(path), stats, parse=parse)


def read_config(run_dir: str | Path) -> tuple[dict[str, Any], str | None]:
    """(config, problem): an absent config.json gives {} and no problem; an unreadable one
    (not JSON, too big, a FIFO, a symlink) gives {} and a reason. Its strings come inert (as
    a record's do), each one line: every view shows them as they are."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        return schema.inert(jsonl.read_json_file(path), clean_line), None
    except FileNotFoundError:
        return {}, None
    except jsonl.BadJsonFile as e:
        return {}, f"unreadable {CONFIG_FILE}: {e}"


def is_run_dir(path: str | Path) -> bool:
    """A directory holding a config.json or metrics.jsonl entry of any kind: a run whose files
    are FIFOs or symlinks is still listed (with what could not be read), not hidden."""
    p = Path(path)
    return (os.path.lexists(p / CONFIG_FILE) or os.path.lexists(p / METRICS_FILE)) and p.is_dir()


def mtimes(paths: Iterable[Path]) -> list[float]:
    """The modification times of those of paths that can be read (a file may go meanwhile)."""
    times = []
    for path in paths:
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            continue
    return times


def regular_size(path: Path) -> int | None:
    """The size of the regular file at path; None for a symlink, FIFO, folder or no file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None
