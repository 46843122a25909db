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

import contextlib
import importlib
import json
import math
import os
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tui_nn.engine import jsonl, schema
from tui_nn.fsio import atomic_write_text, cache_dir
from tui_nn.runs import records
from tui_nn.textsafe import clean_line

EVENTS_PREFIX = "events.out.tfevents."
KIND = "tensorboard"
MISSING_MESSAGE = ("reading TensorBoard logs needs the tensorboard package: "
                   "pip install 'tui-nn[tensorboard]'")
# SummaryWriter and Lightning's logger flush every 120 s by default: a live log can go that
# long unwritten, so it counts as running for longer than a tui-nn run's metrics.jsonl does.
LIVE_WINDOW_S = 300.0
# Event files opened by one follower; a directory of thousands is a mistake, not a run.
MAX_FILES = 256
# A scalar event is ~50 bytes; an image summary a few MB. A longer length is damage.
MAX_RECORD_BYTES = 64 << 20
MAX_WALL_TIME = 1e11  # year 5138: a later wall time is not a time (1e300 would overflow dates)
_FRAME = 16  # a record's length, its CRC and the data's CRC
_READ_BLOCK = 1 << 20
CACHE_VERSION = 1
MAX_CACHED = 512  # event files whose summaries are kept
MAX_CACHED_TAGS = 500  # a file with more tags is read again each time, not cached
MAX_CACHE_BYTES = 16 << 20

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


def is_tensorboard_dir(path: str | Path) -> bool:
    """A TensorBoard log directory that is not a tui-nn run directory."""
    if records.is_run_dir(path):
        return False
    try:
        return any(e.name.startswith(EVENTS_PREFIX) for e in os.scandir(path))
    except OSError:
        return False


def check_available() -> None:
    """Raises TensorBoardMissing when event files cannot be read here."""
    try:
        importlib.import_module("tensorboard.backend.event_processing.event_file_loader")
    except ImportError:
        raise TensorBoardMissing(MISSING_MESSAGE) from None


class TensorBoardFollower:
    """Incremental reader of the scalars in one TensorBoard log directory."""

    def __init__(self, log_dir: str | Path, *, check: bool = True) -> None:
        self.log_dir = Path(log_dir)
        if check:
            check_available()  # TensorBoardMissing here, not at the first poll
        self.offsets: dict[Path, int] = {}  # event file -> bytes read (whole records)
        self._sizes: dict[Path, int] = {}  # size at the last read: unchanged files are skipped
        self.scalar_tags: set[str] = set()  # tensor-valued tags declared as scalars
        self.problems: dict[Path, str] = {}  # file -> why it could not be read (further)
        self.events: dict[Path, int] = {}  # events read from each file
        self._names: dict[tuple[str, Path], str] = {}  # (tag, file) -> the name shown

    @property
    def problem(self) -> str | None:
        """One line about the files that could not be read, or None."""
        if not self.problems:
            return None
        path, why = next(iter(self.problems.items()))
        more = f" (and {len(self.problems) - 1} more files)" if len(self.problems) > 1 else ""
        return clean_line(f"{path.name}: {why}{more}")  # a file's name and its parser's words

    def poll(self) -> list[ScalarPoint]:
        """The scalar points appended since the last poll, file by file. Never raises for a
        missing directory or a damaged file."""
        points: list[ScalarPoint] = []
        for path in all_event_files(self.log_dir):
            size = records.regular_size(path)
            if size is None or size == self._sizes.get(path):
                continue
            points.extend(self.read_file(path))
            self._sizes[path] = size
        return points

    def read_file(self, path: Path) -> list[ScalarPoint]:
        """The points of one file from where this follower stopped in it."""
        out: list[ScalarPoint] = []
        reader = EventRecords(path, self.offsets.get(path, 0))
        try:
            for event in reader:
                self.events[path] = self.events.get(path, 0) + 1
                out.extend(self._scalars(event, path))
        except Exception as e:  # noqa: BLE001 - a damaged file is this file's problem only
            reader.problem = reader.problem or f"{type(e).__name__}: {e}"[:300]
        self.offsets[path] = reader.offset
        if reader.problem and not self.events.get(path):
            self.problems[path] = "no readable event (not an event file, or damaged)"
        elif reader.problem:
            self.problems[path] = reader.problem
        else:
            self.problems.pop(path, None)
        return out

    def _scalars(self, event: Any, source: Path) -> Iterator[ScalarPoint]:
        if not event.HasField("summary"):
            return
        # Numbers and names from another program's file: checked here, where they are decoded.
        wall = float(event.wall_time)
        wall = wall if 0 < wall < MAX_WALL_TIME else math.nan
        for v in event.summary.value:
            value = self._scalar_value(v)
            if value is not None:
                name = self._names.get((v.tag, source))
                if name is None:
                    name = self._names[(v.tag, source)] = clean_line(self._tag(v.tag, source))
                yield ScalarPoint(name, int(event.step), value, wall)

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
            self.scalar_tags.add(v.tag)
        if v.tag not in self.scalar_tags:
            return None
        return _tensor_scalar(v.tensor)


class EventRecords:
    """The Event protos of one event file from a byte offset: TFRecord framing (length, its
    masked CRC32C, data, the data's CRC32C), read in large blocks. A record cut short at the
    end is a write in progress: iteration stops before it and `offset` stays at its start, so
    the next poll reads it whole. A bad checksum or length is damage: `problem` says where."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self.problem: str | None = None

    def __iter__(self) -> Iterator[Any]:
        from tensorboard.compat.proto.event_pb2 import Event
        try:
            f = jsonl.open_regular(self.path)
        except (OSError, jsonl.BadJsonFile) as e:
            self.problem = str(e)
            return
        with f:
            f.seek(self.offset)
            buf, pos = b"", 0
            while True:
                record = self._next(buf, pos)
                if record is None:  # need more bytes
                    more = f.read(_READ_BLOCK)
                    if not more:
                        return
                    buf, pos = buf[pos:] + more, 0
                    continue
                if record is False:
                    return
                data, pos = record
                self.offset += _FRAME + len(data)
                yield Event.FromString(data)

    def _next(self, buf: bytes, pos: int):
        """(data, next position), None when buf ends inside the record, False on damage."""
        if len(buf) - pos < 12:
            return None
        header = buf[pos:pos + 8]
        (length,), (crc,) = struct.unpack("<Q", header), struct.unpack_from("<I", buf, pos + 8)
        if crc != _masked_crc(header) or length > MAX_RECORD_BYTES:
            self.problem = f"damaged record at byte {self.offset}: the events after it are not read"
            return False
        end = pos + 12 + length
        if len(buf) < end + 4:
            return None
        data = buf[pos + 12:end]
        if struct.unpack_from("<I", buf, end)[0] != _masked_crc(data):
            self.problem = f"bad checksum at byte {self.offset}: the events after it are not read"
            return False
        return data, end + 4


def _masked_crc(data: bytes) -> int:
    global _crc
    if _crc is None:
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
        _crc = masked_crc32c
    return _crc(data)


_crc = None  # tensorboard's CRC32C, imported at the first record


def _tensor_scalar(tensor: Any) -> float | None:
    from tensorboard.util import tensor_util
    try:
        array = tensor_util.make_ndarray(tensor)
    except Exception:  # noqa: BLE001 - a malformed tensor proto is one skipped value
        return None
    return float(array.reshape(-1)[0]) if array.size == 1 else None


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

    def merge(self, other: "LogSummary") -> None:
        """Fold in the summary of a later file (files are read oldest first)."""
        for tag, o in other.tags.items():
            s = self.tags.get(tag)
            if s is None:
                self.tags[tag] = TagStats(o.last, o.low, o.high, o.count)
            else:
                s.last, s.count = o.last, s.count + o.count
                s.low, s.high = min(s.low, o.low), max(s.high, o.high)
        self.max_step = max(self.max_step, other.max_step)
        for wall in (other.first_wall, other.last_wall):
            if wall is not None:
                self.first_wall = min(self.first_wall or wall, wall)
                self.last_wall = max(self.last_wall or wall, wall)

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


def _tag_stats(raw: Any) -> TagStats | None:
    if not (isinstance(raw, list) and len(raw) == 4 and isinstance(raw[3], int)):
        return None
    nums = [schema.number(v) for v in raw[:3]]
    return None if None in nums else TagStats(nums[0], nums[1], nums[2], raw[3])


@dataclass
class CachedFile:
    """One event file's summary as the last listing left it."""

    size: int
    offset: int  # bytes of whole records read
    events: int
    scalar_tags: list[str]
    problem: str | None
    summary: LogSummary

    def to_json(self) -> dict[str, Any]:
        s = self.summary
        return {"size": self.size, "offset": self.offset, "events": self.events,
                "scalar_tags": self.scalar_tags, "problem": self.problem,
                "tags": {t: [_num(v.last), _num(v.low), _num(v.high), v.count]
                         for t, v in s.tags.items()},
                "max_step": s.max_step, "first_wall": s.first_wall, "last_wall": s.last_wall}

    @classmethod
    def from_json(cls, raw: Any) -> "CachedFile | None":
        """The entry, or None for anything not exactly as to_json wrote it (the cache file
        is a file like any other: checked, never trusted)."""
        try:
            tags = {clean_line(t): _tag_stats(v) for t, v in raw["tags"].items()}
            walls = [schema.number(raw[k]) if raw[k] is not None else None
                     for k in ("first_wall", "last_wall")]
            ints = [raw[k] for k in ("size", "offset", "events", "max_step")]
            if (None in tags.values() or not all(isinstance(i, int) and i >= 0 for i in ints)
                    or not all(isinstance(t, str) for t in raw["scalar_tags"])):
                return None
            problem = raw["problem"]
            return cls(size=ints[0], offset=ints[1], events=ints[2],
                       scalar_tags=list(raw["scalar_tags"]),
                       problem=problem if isinstance(problem, str) else None,  # inert when shown
                       summary=LogSummary(tags=tags, max_step=ints[3], first_wall=walls[0],
                                          last_wall=walls[1]))
        except (KeyError, TypeError, AttributeError):
            return None


def _num(v: float) -> float | str:
    return v if math.isfinite(v) else ("NaN" if math.isnan(v) else
                                       ("Infinity" if v > 0 else "-Infinity"))


class SummaryCache:
    """Summaries of event files by (log dir, file), with each file's inode and mtime, in
    fsio.cache_dir(): `tui-nn runs` reads a 15 MB log once, not at every listing. Bounded
    to MAX_CACHED files; an unreadable cache is an empty one; a failed save is ignored."""

    FILE = "tensorboard-summaries.json"

    def __init__(self, entries: dict[str, Any], path: Path | None) -> None:
        self.entries, self.path, self.changed = entries, path, False

    @classmethod
    def load(cls) -> "SummaryCache":
        path = cache_dir() / cls.FILE
        try:
            raw = jsonl.read_json_file(path, cap=MAX_CACHE_BYTES)
        except (OSError, jsonl.BadJsonFile):
            raw = {}
        entries = raw.get("files") if raw.get("version") == CACHE_VERSION else None
        return cls(entries if isinstance(entries, dict) else {}, path)

    def get(self, key: str, st: os.stat_result) -> CachedFile | None:
        raw = self.entries.get(key)
        if not (isinstance(raw, dict) and raw.get("ino") == st.st_ino
                and raw.get("dev") == st.st_dev):
            return None
        entry = CachedFile.from_json(raw)
        if entry is None or entry.size > st.st_size or entry.offset > st.st_size:
            return None
        if entry.size == st.st_size and raw.get("mtime_ns") != st.st_mtime_ns:
            return None  # rewritten in place at the same size
        return entry

    def put(self, key: str, st: os.stat_result, entry: CachedFile) -> None:
        if len(entry.summary.tags) > MAX_CACHED_TAGS:
            return
        self.entries.pop(key, None)  # re-inserted last: the dict keeps recent use order
        self.entries[key] = {**entry.to_json(), "ino": st.st_ino, "dev": st.st_dev,
                             "mtime_ns": st.st_mtime_ns}
        while len(self.entries) > MAX_CACHED:
            self.entries.pop(next(iter(self.entries)))
        self.changed = True

    def save(self) -> None:
        if not self.changed or self.path is None:
            return
        with contextlib.suppress(OSError):  # an unwritable cache costs time, never a listing
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write_text(self.path, json.dumps(
                {"version": CACHE_VERSION, "files": self.entries}, separators=(",", ":")))


def summarize(log_dir: str | Path, *, use_cache: bool = True) -> tuple[LogSummary, str | None]:
    """(summary, problem) from every scalar in the directory's event files. Each file's
    summary is kept in the cache (SummaryCache) with its size, mtime and inode: an unchanged
    file is not read again, a grown one only from where the last listing stopped."""
    # Not checked here: summaries from the cache need no tensorboard import (0.5 s).
    follower = TensorBoardFollower(log_dir, check=False)
    cache = SummaryCache.load() if use_cache else None
    summary = LogSummary()
    for path in all_event_files(log_dir):
        part = _file_summary(follower, path, cache)
        if part is not None:
            summary.merge(part)
    if cache is not None:
        cache.save()
    return summary, follower.problem


def _file_summary(follower: TensorBoardFollower, path: Path,
                  cache: SummaryCache | None) -> LogSummary | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    key = f"{follower.log_dir.resolve()}\0{path.name}\0{path.parent.name}"
    entry = cache.get(key, st) if cache is not None else None
    if entry is not None and entry.size == st.st_size:
        if entry.problem:
            follower.problems[path] = entry.problem
        return entry.summary
    check_available()  # TensorBoardMissing before the first file that must be read
    part = LogSummary()
    if entry is not None:  # the file grew: read on from where the cached summary ended
        part = entry.summary
        follower.offsets[path], follower.events[path] = entry.offset, entry.events
        follower.scalar_tags.update(entry.scalar_tags)
    for p in follower.read_file(path):
        part.add(p)
    if cache is not None:
        cache.put(key, st, CachedFile(
            size=st.st_size, offset=follower.offsets[path], events=follower.events.get(path, 0),
            scalar_tags=sorted(follower.scalar_tags), problem=follower.problems.get(path),
            summary=part))
    return part


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


def newest_event_mtime(log_dir: str | Path) -> float | None:
    return max(records.mtimes(all_event_files(log_dir)), default=None)


def oldest_event_mtime(log_dir: Path) -> float | None:
    return min(records.mtimes(all_event_files(log_dir)), default=None)
