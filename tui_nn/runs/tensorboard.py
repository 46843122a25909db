"""TensorBoard log directories written by any framework, read as runs.

A directory holding `events.out.tfevents.*` files (torch's SummaryWriter, Lightning's
`lightning_logs/version_N`, a Hugging Face `runs/<date>_<host>`) and no tui-nn config.json or
metrics.jsonl is a run of kind "tensorboard": `tui-nn runs` lists it and `tui-nn watch`
follows it. tui-nn's own runs also hold event files (engine/tensorboard.py); they stay tui-nn
runs.

Event files are read with tensorboard's own record reader (an optional extra: without it,
TensorBoardMissing carries the one-line message to show). The reader keeps its offset in each
file, so a poll reads only the events appended since the last one, and a record the writer has
not finished is read again at the next poll. A damaged file is noted in `problem` and never
raises out of here. No torch, no UI imports.
"""

from __future__ import annotations

import math
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tui_nn.runs import records

EVENTS_PREFIX = "events.out.tfevents."
KIND = "tensorboard"
MISSING_MESSAGE = ("reading TensorBoard logs needs the tensorboard package: "
                   "pip install 'tui-nn[tensorboard]'")
# SummaryWriter and Lightning's logger flush every 120 s by default: a live log can go that
# long unwritten, so it counts as running for longer than a tui-nn run's metrics.jsonl does.
LIVE_WINDOW_S = 300.0
# Event files opened by one follower; a directory of thousands is a mistake, not a run.
MAX_FILES = 256

# Tags that hold a validation accuracy / loss, whatever the framework's spelling
# ("val/accuracy", "val_acc", "eval/accuracy", "valid_acc_epoch", "validation/loss").
_VAL_WORDS = {"val", "valid", "validation", "eval", "test"}
_TAG_WORDS = re.compile(r"[^a-z0-9]+")


def _tag_kind(tag: str) -> str | None:
    """"accuracy" or "loss" for a validation tag of that kind, else None."""
    words = _TAG_WORDS.split(tag.lower())
    if not _VAL_WORDS.intersection(words):
        return None
    if any(w.startswith("acc") for w in words):
        return "accuracy"
    return "loss" if "loss" in words else None


class TensorBoardMissing(ImportError):
    """The tensorboard package is not installed; str() is the message to show."""


@dataclass(frozen=True)
class ScalarPoint:
    """One scalar value of one tag at one step, as an event file holds it."""

    tag: str
    step: int
    value: float
    wall_time: float


def event_files(log_dir: str | Path) -> list[Path]:
    """The event files directly in log_dir (regular files, not symlinks), oldest first: their
    names carry the time they were created."""
    try:
        entries = [e for e in os.scandir(log_dir) if e.name.startswith(EVENTS_PREFIX)]
    except OSError:
        return []
    files = []
    for e in entries:
        try:
            if e.is_file(follow_symlinks=False):
                files.append(Path(e.path))
        except OSError:
            continue
    return sorted(files, key=lambda p: p.name)[:MAX_FILES]


def all_event_files(log_dir: str | Path) -> list[Path]:
    """The event files of log_dir and of its direct subdirectories (SummaryWriter.add_scalars
    writes one subdirectory per curve), at most MAX_FILES."""
    files = event_files(log_dir)
    try:
        subdirs = sorted(e.path for e in os.scandir(log_dir)
                         if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
    except OSError:
        subdirs = []
    for sub in subdirs:
        if len(files) >= MAX_FILES:
            break
        files += event_files(sub)
    return files[:MAX_FILES]


def has_event_files(path: str | Path) -> bool:
    try:
        return any(e.name.startswith(EVENTS_PREFIX) for e in os.scandir(path))
    except OSError:
        return False


def is_tensorboard_dir(path: str | Path) -> bool:
    """A TensorBoard log directory that is not a tui-nn run directory."""
    return not records.is_run_dir(path) and has_event_files(path)


def _loader_class():
    try:
        from tensorboard.backend.event_processing.event_file_loader import (
            LegacyEventFileLoader)
    except ImportError:
        raise TensorBoardMissing(MISSING_MESSAGE) from None
    return LegacyEventFileLoader


def check_available() -> None:
    """Raises TensorBoardMissing when event files cannot be read here."""
    _loader_class()


class TensorBoardFollower:
    """Incremental reader of the scalars in one TensorBoard log directory."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = Path(log_dir)
        self._loader = _loader_class()
        self._loaders: dict[Path, Any] = {}  # event file -> its reader (holds its offset)
        self._sizes: dict[Path, int] = {}  # size at the last read: unchanged files are skipped
        self._scalar_tags: set[str] = set()  # tensor-valued tags declared as scalars
        self.problems: dict[Path, str] = {}  # file -> why it could not be read (further)
        self.events_read = 0
        self._per_file: dict[Path, int] = {}  # events read from each file

    @property
    def problem(self) -> str | None:
        """One line about the files that could not be read, or None."""
        if not self.problems:
            return None
        path, why = next(iter(self.problems.items()))
        more = f" (and {len(self.problems) - 1} more files)" if len(self.problems) > 1 else ""
        return f"{path.name}: {why}{more}"

    def poll(self) -> list[ScalarPoint]:
        """The scalar points appended since the last poll, file by file. Never raises for a
        missing directory or a damaged file."""
        points: list[ScalarPoint] = []
        for path in all_event_files(self.log_dir):
            size = _regular_size(path)
            if size is None or size == self._sizes.get(path):
                continue
            points.extend(self._read(path))
            self._sizes[path] = size
        return points

    def _read(self, path: Path) -> list[ScalarPoint]:
        out: list[ScalarPoint] = []
        try:
            loader = self._loaders.get(path)
            if loader is None:
                loader = self._loaders[path] = self._loader(str(path))
            for event in loader.Load():
                self.events_read += 1
                self._per_file[path] = self._per_file.get(path, 0) + 1
                out.extend(self._scalars(event, path))
        except Exception as e:  # noqa: BLE001 - a damaged file is this file's problem only
            self.problems[path] = f"{type(e).__name__}: {e}"[:300]
        else:
            if self._per_file.get(path):
                self.problems.pop(path, None)
            else:
                # The reader stops quietly at a bad checksum (it cannot tell one from a record
                # still being written), so a file with bytes but no event is said to be bad.
                self.problems[path] = "no readable event (not an event file, or damaged)"
        return out

    def _scalars(self, event: Any, source: Path) -> Iterator[ScalarPoint]:
        if not event.HasField("summary"):
            return
        for v in event.summary.value:
            value = self._scalar_value(v)
            if value is not None:
                yield ScalarPoint(self._tag(v.tag, source), int(event.step), value,
                                  float(event.wall_time))

    def _tag(self, tag: str, source: Path) -> str:
        """A tag of a subdirectory's file, named as add_scalars means it: "loss/train" for
        tag "loss" in loss_train/; else "<subdir>/<tag>"."""
        if source.parent == self.log_dir:
            return tag
        sub = source.parent.name
        flat = tag.replace("/", "_") + "_"
        return f"{tag}/{sub[len(flat):]}" if sub.startswith(flat) else f"{sub}/{tag}"

    def _scalar_value(self, v: Any) -> float | None:
        kind = v.WhichOneof("value")
        if kind == "simple_value":  # torch's SummaryWriter, TF1
            return float(v.simple_value)
        if kind != "tensor":
            return None
        # TF2/Keras writers: a tensor, declared a scalar by metadata on its first value only.
        if v.HasField("metadata") and v.metadata.plugin_data.plugin_name == "scalars":
            self._scalar_tags.add(v.tag)
        if v.tag not in self._scalar_tags:
            return None
        return _tensor_scalar(v.tensor)


def _tensor_scalar(tensor: Any) -> float | None:
    from tensorboard.util import tensor_util
    try:
        array = tensor_util.make_ndarray(tensor)
    except Exception:  # noqa: BLE001 - a malformed tensor proto is one skipped value
        return None
    return float(array.reshape(-1)[0]) if array.size == 1 else None


def _regular_size(path: Path) -> int | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


# ---- summary for `tui-nn runs` ---------------------------------------------------------------
@dataclass
class TagStats:
    last: float
    low: float
    high: float
    count: int = 1


@dataclass
class LogSummary:
    """What one pass over a log directory's scalars tells about the run."""

    tags: dict[str, TagStats] = field(default_factory=dict)
    max_step: int = 0
    first_wall: float | None = None
    last_wall: float | None = None

    def add(self, p: ScalarPoint) -> None:
        s = self.tags.get(p.tag)
        if s is None:
            self.tags[p.tag] = TagStats(p.value, p.value, p.value)
        else:
            s.last, s.count = p.value, s.count + 1
            if math.isfinite(p.value):
                s.low, s.high = min(s.low, p.value), max(s.high, p.value)
        self.max_step = max(self.max_step, p.step)
        if math.isfinite(p.wall_time) and p.wall_time > 0:
            self.first_wall = min(self.first_wall or p.wall_time, p.wall_time)
            self.last_wall = max(self.last_wall or p.wall_time, p.wall_time)


def summarize(log_dir: str | Path) -> tuple[LogSummary, str | None]:
    """(summary, problem) from every scalar in the directory's event files."""
    follower = TensorBoardFollower(log_dir)
    summary = LogSummary()
    for p in follower.poll():
        summary.add(p)
    return summary, follower.problem


def best_tag(tags: dict[str, TagStats]) -> tuple[str, str, float, float] | None:
    """(tag, metric, best, last) for the validation accuracy tag (higher is better), else the
    validation loss tag (lower is better); None when there is neither. An accuracy logged in
    percent is turned into a fraction, as tui-nn records it."""
    for metric in ("accuracy", "loss"):
        found = sorted(t for t in tags if _tag_kind(t) == metric)
        if not found:
            continue
        tag = found[0]
        s = tags[tag]
        if metric == "loss":
            return tag, metric, s.low, s.last
        scale = 100.0 if 1.0 < s.high <= 100.0 else 1.0
        return tag, metric, s.high / scale, s.last / scale
    return None


def is_live(log_dir: str | Path, window_s: float | None = None,
            now: float | None = None) -> bool:
    """Whether an event file was written in the last window_s seconds (LIVE_WINDOW_S by
    default). Only the file's age tells: tensorboard's writer without TensorFlow reopens the
    file for each flush instead of holding it open, so no process can be seen writing it."""
    newest = newest_event_mtime(log_dir)
    window = LIVE_WINDOW_S if window_s is None else window_s
    return newest is not None and (time.time() if now is None else now) - newest <= window


def epochs_done(tags: dict[str, TagStats]) -> int:
    """From Lightning's "epoch" (the 0-based epoch in progress, logged with every step) or
    Hugging Face's "train/epoch" (epochs done as a fraction: 2.5 halfway through the third);
    0 when the log has neither."""
    lightning, hf = tags.get("epoch"), tags.get("train/epoch")
    if lightning is not None and math.isfinite(lightning.last):
        return max(int(lightning.last) + 1, 0)
    if hf is not None and math.isfinite(hf.last):
        return max(int(hf.last), 0)
    return 0


def _event_mtimes(log_dir: str | Path) -> list[float]:
    times = []
    for path in all_event_files(log_dir):
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            continue
    return times


def newest_event_mtime(log_dir: str | Path) -> float | None:
    return max(_event_mtimes(log_dir), default=None)


def read_tensorboard_info(log_dir: str | Path, *, name: str | None = None,
                          live_window_s: float | None = None, now: float | None = None):
    """A RunInfo for a TensorBoard log directory: "running" while is_live, else "finished" (a
    log has no end record; live_window_s defaults to LIVE_WINDOW_S). Never raises for bad
    content: what cannot be read is in `message`."""
    from tui_nn.runs.info import RunInfo, dir_size

    path = Path(log_dir)
    try:
        summary, problem = summarize(path)
    except TensorBoardMissing as e:
        summary, problem = LogSummary(), str(e)
    last_update = newest_event_mtime(path)
    running = is_live(path, live_window_s, now)
    best = best_tag(summary.tags)
    started_at = summary.first_wall or _oldest_mtime(path)
    duration = (summary.last_wall - summary.first_wall
                if summary.first_wall and summary.last_wall else None)
    return RunInfo(
        path=path, name=name or path.name, model="(tensorboard)", dataset="-",
        status="running" if running else "finished",
        epochs_done=epochs_done(summary.tags),
        epochs_total=None, steps_done=summary.max_step, steps_total=None,
        metric=best[1] if best else None, best_value=best[2] if best else None,
        last_value=best[3] if best else None, duration_s=duration,
        size_bytes=dir_size(path), started_at=started_at, last_update=last_update,
        message=problem, kind=KIND,
    )


def _oldest_mtime(log_dir: Path) -> float | None:
    return min(_event_mtimes(log_dir), default=None)
