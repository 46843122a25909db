"""The run directory: the durable record of a run (config.json, metrics.jsonl, checkpoints)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any


def _slug(text: str) -> str:
    text = text.replace(os.sep, "-")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40] or "run"


class RunDir:
    """Owns one run directory. metrics.jsonl only ever holds complete lines: each record is one
    os.write of a full line to an O_APPEND descriptor."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if create:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise OSError(f"cannot create run directory {self.path}: {e.strerror}") from None
        self._metrics_fd: int | None = None

    @classmethod
    def new(cls, root: str | Path, model: str, dataset: str) -> "RunDir":
        root = Path(root)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{_slug(Path(model).stem if '/' in model else model)}-{_slug(dataset)}"
        path = root / base
        n = 2
        while path.exists():
            path = root / f"{base}-{n}"
            n += 1
        return cls(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def last_checkpoint(self) -> Path:
        return self.path / "last.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.path / "best.pt"

    def write_config(self, config: dict[str, Any]) -> None:
        tmp = self.config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.config_path)

    def read_config(self) -> dict[str, Any]:
        return json.loads(self.config_path.read_text())

    def append_metrics(self, record: dict[str, Any]) -> None:
        if self._metrics_fd is None:
            self._metrics_fd = os.open(self.metrics_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                       0o644)
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        os.write(self._metrics_fd, line)

    def close(self) -> None:
        if self._metrics_fd is not None:
            os.close(self._metrics_fd)
            self._metrics_fd = None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Every complete JSON line; a torn last line (a killed writer) is skipped."""
    records = []
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    with open(p, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records
