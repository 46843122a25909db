"""Reading metrics.jsonl without trusting it: a killed writer can leave a torn last line, a
crashed disk a garbled one. Both are skipped; nothing here raises for bad content.

This package never imports tui_nn.engine (whose __init__ loads torch): it knows the event
records only by their JSON shape, so `tui-nn runs` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"

# RunDir writes json.dumps(record, separators=(",", ":")) with "type" first, so the type of a
# record can be read off its first bytes without parsing the (possibly long) rest.
_TYPE_PREFIX = b'{"type":"'


def metrics_path(run_dir: str | Path) -> Path:
    p = Path(run_dir)
    return p if p.name == METRICS_FILE else p / METRICS_FILE


def iter_lines(path: str | Path) -> Iterator[tuple[str | None, bytes]]:
    """(type, raw line) for every complete line; type is None when the prefix is unusual.

    A last line without its newline is a write that never finished: skipped."""
    try:
        f = open(path, "rb")
    except OSError:
        return
    with f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            yield _peek_type(line), line


def _peek_type(line: bytes) -> str | None:
    if not line.startswith(_TYPE_PREFIX):
        return None
    end = line.find(b'"', len(_TYPE_PREFIX))
    return line[len(_TYPE_PREFIX):end].decode("ascii", "replace") if end > 0 else None


def parse(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line.decode("utf-8", "replace"))
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("type"), str) else None


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every readable record of a metrics.jsonl (or of the one in a run directory)."""
    for _, line in iter_lines(metrics_path(path)):
        record = parse(line)
        if record is not None:
            yield record


def read_config(run_dir: str | Path) -> tuple[dict[str, Any], str | None]:
    """(config, problem): an absent or unreadable config.json gives {} and a reason."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as e:
        return {}, f"unreadable {CONFIG_FILE}: {e}"
    if not isinstance(data, dict):
        return {}, f"unreadable {CONFIG_FILE}: not a JSON object"
    return data, None


def is_run_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p / CONFIG_FILE).is_file() or (p / METRICS_FILE).is_file()
