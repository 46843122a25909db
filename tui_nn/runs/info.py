"""RunInfo: one run directory summarised from config.json and metrics.jsonl."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tui_nn.engine import jsonl
from tui_nn.engine.rundir import LAST_CHECKPOINT
from tui_nn.fmt import higher_is_better
from tui_nn.runs import liveness, records, tensorboard
from tui_nn.textsafe import MAX_CHARS, clean, clean_line

# What a run can be. "stopped" and "interrupted" runs can be resumed from last.pt; "failed"
# ones too when the engine saved the last good weights (NaN does).
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")


@dataclass(frozen=True)
class RunInfo:
    """What `tui-nn runs` and the runs screen show about one run directory."""

    path: Path
    name: str  # path relative to the discovery root ("group/run" when nested)
    model: str
    dataset: str
    status: str  # one of STATUSES
    # What could be read (a run none of whose files can be read has nothing more to say).
    epochs_done: int = 0
    epochs_total: int | None = None
    steps_done: int = 0
    steps_total: int | None = None
    metric: str | None = None  # "accuracy" (higher is better) or "mse" (lower is better)
    best_value: float | None = None
    last_value: float | None = None
    duration_s: float | None = None  # training time, summed over resumed sessions
    size_bytes: int = 0
    started_at: float | None = None  # unix time the run was first started
    last_update: float | None = None  # newest write to metrics.jsonl / config.json (unix time)
    task: str | None = None
    device: str | None = None
    paused: bool = False  # status is "running" and the last event says paused
    message: str | None = None  # why it failed, or what could not be read
    failure_kind: str | None = None  # Failed.kind: "nan", "oom", "data", "disk", "error", ...
    sessions: int = 0  # 1 + the number of times it was resumed
    has_checkpoint: bool = False
    kind: str = "tui-nn"  # "tensorboard": a log directory of another framework (read-only)
    config: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def resumable(self) -> bool:
        # An interrupted run with only its config.json resumes from step 0; a run a loop of
        # its own wrote (tui_nn.Run) is resumed by that loop, not by `tui-nn train --resume`.
        if self.config.get("source") == "tui_nn.Run":
            return False
        return ((self.has_checkpoint and self.status in ("stopped", "interrupted", "failed"))
                or (self.status == "interrupted" and bool(self.config)))

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric)

    def to_dict(self, include_config: bool = False) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["resumable"] = self.resumable
        d["started_at_iso"] = _iso(self.started_at)
        d["last_update_iso"] = _iso(self.last_update)
        if not include_config:
            d.pop("config")
        return d


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds") if t else None


def read_run_info(run_dir: str | Path, *, name: str | None = None,
                  writers: set[str] | None = None, check_writers: bool = True,
                  live_window_s: float = liveness.DEFAULT_LIVE_WINDOW_S,
                  now: float | None = None) -> RunInfo:
    """Summarise one run directory. Never raises for bad content: what cannot be read is
    reported in `message`.

    writers: the set from liveness.writers_of_metrics_files(), when the caller scans once for
    many runs; check_writers=False uses only the file's age (see liveness)."""
    path = Path(run_dir)
    # The directory's name is data like the files in it: made inert here, for every view.
    shown = clean_line(name or path.name)
    if tensorboard.is_tensorboard_dir(path):
        # Its own window: a TensorBoard writer flushes only every 120 s.
        return _tensorboard_info(path, shown, now)
    config, problem = records.read_config(path)
    scan = _scan_metrics(records.metrics_path(path))
    file_times = records.mtimes([path / records.METRICS_FILE, path / records.CONFIG_FILE])
    last_update = max(file_times, default=None)
    if scan.final is None and check_writers and writers is None:
        writers = liveness.writers_of_metrics_files()
    status = _status(scan.final, lambda: liveness.is_alive(
        path, last_update, writers if check_writers else None, live_window_s, now))
    has_checkpoint = records.regular_size(path / LAST_CHECKPOINT) is not None
    if status == "interrupted" and not has_checkpoint and not config:
        # Killed before config.json and the step-0 checkpoint: nothing --resume could use.
        status, problem = "failed", problem or "killed before its first checkpoint: nothing to resume"
    started_at = _parse_time(config.get("started_at")) or min(file_times, default=None)
    return RunInfo(
        path=path, name=shown, status=status, paused=status == "running" and scan.paused,
        **_described(config, scan), **_progress(scan),
        duration_s=_duration(scan, status, started_at, last_update),
        size_bytes=dir_size(path), started_at=started_at, last_update=last_update,
        message=_message(problem or scan.problem, scan, config),
        failure_kind=_str(scan.final.get("kind")) if status == "failed" and scan.final else None,
        sessions=scan.sessions, has_checkpoint=has_checkpoint, config=config)


def _described(config: dict[str, Any], scan: "_Scan") -> dict[str, Any]:
    """What the run trains, from its RunStarted (records come inert from records.parse) or
    else its config.json (made inert by records.read_config)."""
    started = scan.started or {}
    metric = (started.get("metric") or _last_epoch(scan).get("metric")
              or (scan.final or {}).get("metric") or _metric_for_task(config.get("task")))
    return dict(
        model=_str(config.get("model") or started.get("model")) or "?",
        dataset=_str(config.get("dataset") or started.get("dataset")) or "?",
        epochs_total=started.get("epochs") or _int(config.get("epochs")),
        steps_total=started.get("total_steps"), metric=_str(metric),
        task=_str(started.get("task") or config.get("task")),
        device=_str(started.get("device") or config.get("device_resolved")))


def _tensorboard_info(path: Path, name: str, now: float | None) -> RunInfo:
    """A TensorBoard log directory: "running" while tensorboard.is_live, else "finished" (a
    log has no end record)."""
    try:
        summary, problem = tensorboard.summarize(path)
    except tensorboard.TensorBoardMissing as e:
        summary, problem = tensorboard.LogSummary(), str(e)
    best = tensorboard.best_tag(summary.tags)
    first, last = summary.first_wall, summary.last_wall
    return RunInfo(
        path=path, name=name, model="(tensorboard)", dataset="-",
        status="running" if tensorboard.is_live(path, None, now) else "finished",
        epochs_done=tensorboard.epochs_done(summary.tags), steps_done=summary.max_step,
        metric=best[1] if best else None, best_value=best[2] if best else None,
        last_value=best[3] if best else None,
        duration_s=last - first if first and last else None, size_bytes=dir_size(path),
        started_at=first or tensorboard.oldest_event_mtime(path),
        last_update=tensorboard.newest_event_mtime(path),
        message=problem, kind=tensorboard.KIND)


def _duration(scan: "_Scan", status: str, started_at: float | None,
              last_update: float | None) -> float | None:
    if (scan.sessions <= 1 and status not in ("finished", "stopped") and started_at
            and last_update):
        # One session not cleanly finished: its wall time is the best measure there is.
        return max(scan.duration_s or 0.0, last_update - started_at)
    return scan.duration_s


def _message(problem: str | None, scan: "_Scan", config: dict) -> str | None:
    """Why the run failed (its Failed record, inert), else what could not be read (a problem
    names the path: made inert here)."""
    if scan.final is not None and scan.final.get("type") == "Failed":
        return scan.final.get("message") or "failed"
    if problem is None and scan.unreadable and not scan.sessions and not config:
        return "metrics.jsonl has no readable records"
    return clean(problem) if problem is not None else None


def _status(final: dict | None, alive) -> str:
    """The run's status from its last record; alive() (a process scan) only when it has none."""
    if final is not None and final.get("type") == "Finished":
        return final.get("status") if final.get("status") in STATUSES else "finished"
    if final is not None:
        return "failed"
    return "running" if alive() else "interrupted"


def _last_epoch(scan: "_Scan") -> dict[str, Any]:
    return scan.epochs[max(scan.epochs)] if scan.epochs else {}


def _progress(scan: "_Scan") -> dict[str, Any]:
    """Epochs done, best and last metric value, steps done: from Finished when there is one,
    else from the last epoch seen. Record fields come type-checked from records.parse."""
    final = scan.final
    if final is not None and final.get("type") == "Finished":
        return dict(epochs_done=_or(final.get("epochs_done"), len(scan.epochs)),
                    best_value=final.get("best_value"), last_value=final.get("last_value"),
                    steps_done=_or(final.get("step"), scan.step))
    last = _last_epoch(scan)
    return dict(epochs_done=max(scan.epochs) + 1 if scan.epochs else 0,
                best_value=last.get("best_value"), last_value=last.get("value"),
                steps_done=scan.step)


@dataclass
class _Scan:
    started: dict[str, Any] | None = None  # the last RunStarted
    sessions: int = 0
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)
    final: dict[str, Any] | None = None  # Finished/Failed ending the last session
    step: int = 0
    paused: bool = False
    done_sessions_s: float = 0.0  # training time of the sessions before the last
    session_s: float = 0.0  # of the last session so far
    unreadable: int = 0  # lines skipped: not JSON, too deep, too long
    problem: str | None = None  # why metrics.jsonl could not be read at all (a FIFO, a symlink)

    @property
    def duration_s(self) -> float | None:
        return self.done_sessions_s + self.session_s if self.sessions else None

    def add(self, rec: dict[str, Any]) -> None:
        """One record (type-checked by records.parse) into the summary."""
        kind = rec["type"]
        if kind == "StepMetrics":
            self.step = max(self.step, _or(rec.get("step"), 0))
        elif kind == "RunStarted":
            self._new_session(rec)
        elif kind == "EpochMetrics":
            self.epochs[_or(rec.get("epoch"), len(self.epochs))] = rec
            self.step = max(self.step, _or(rec.get("step"), 0))
            self.session_s = rec.get("elapsed_s") or self.session_s
        elif kind in ("Finished", "Failed"):
            self.final = rec
            if kind == "Finished":
                self.session_s = rec.get("elapsed_s") or self.session_s
        elif kind == "StateChanged":
            self.paused = rec.get("state") == "paused"

    def _new_session(self, rec: dict[str, Any]) -> None:
        # A resumed session rewinds the epochs it will redo (see history.load_history).
        if self.sessions:
            self.done_sessions_s += self.session_s
        self.sessions += 1
        self.session_s = 0.0
        self.started, self.final, self.paused = rec, None, False
        start_epoch = _or(rec.get("start_epoch"), 0)
        self.epochs = {e: r for e, r in self.epochs.items() if e < start_epoch}
        self.step = _or(rec.get("start_step"), 0)


def _scan_metrics(path: Path) -> _Scan:
    """One pass over metrics.jsonl. Step records (the bulk of the file) are not parsed except
    the last one of each session."""
    scan = _Scan()
    last_step_line: bytes | None = None
    stats = jsonl.LineStats()
    for kind, line in records.iter_lines(path, stats):
        if kind == "StepMetrics":
            last_step_line = line
            continue
        rec = records.parse(line)
        if rec is None:
            scan.unreadable += 1
            continue
        if rec["type"] == "RunStarted":
            last_step_line = None
        scan.add(rec)
    rec = records.parse(last_step_line) if last_step_line is not None else None
    if rec is not None:
        scan.add(rec)
    scan.unreadable += stats.too_long
    scan.problem = stats.problem
    return scan


def _metric_for_task(task: Any) -> str | None:
    if task == "regression":
        return "mse"
    return "accuracy" if task else None


def _str(value: Any) -> str | None:
    # Record fields and config.json's strings come inert and one line; its other values (a
    # list, a number) are shown by repr, which escapes what they hold: views expect a line.
    return None if value is None else str(value)[:MAX_CHARS]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _or(value: Any, default: Any) -> Any:
    """A checked record field (records.parse leaves absent and null ones None) or default."""
    return default if value is None else value


def _parse_time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text[:64], fmt).timestamp()
        except (ValueError, OverflowError, OSError):
            continue
    return None


def dir_size(path: Path) -> int:
    """Bytes in the files under path (symlinks not followed, unreadable parts skipped)."""
    total = 0
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total
