"""RunInfo: one run directory summarised from config.json and metrics.jsonl."""

from __future__ import annotations

import os
import stat
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tui_nn.engine import jsonl, schema
from tui_nn.engine.rundir import LAST_CHECKPOINT
from tui_nn.fmt import higher_is_better
from tui_nn.runs import liveness, records, tensorboard
from tui_nn.textsafe import clean, clean_line

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
    epochs_done: int
    epochs_total: int | None
    steps_done: int
    steps_total: int | None
    metric: str | None  # "accuracy" (higher is better) or "mse" (lower is better)
    best_value: float | None
    last_value: float | None
    duration_s: float | None  # training time, summed over resumed sessions
    size_bytes: int
    started_at: float | None  # unix time the run was first started
    last_update: float | None  # unix time of the newest write to metrics.jsonl / config.json
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
    if tensorboard.is_tensorboard_dir(path):
        # Its own window: a TensorBoard writer flushes only every 120 s.
        return tensorboard.read_tensorboard_info(path, name=name, now=now)
    config, problem = records.read_config(path)
    scan = _scan_metrics(records.metrics_path(path))
    last_update = _newest_mtime(path)

    started = scan.started or {}
    final = scan.final
    if final is None and check_writers and writers is None:
        writers = liveness.writers_of_metrics_files()
    status = _status(final, lambda: liveness.is_alive(
        path, last_update, writers if check_writers else None, live_window_s, now))
    has_checkpoint = _is_regular_file(path / LAST_CHECKPOINT)
    if status == "interrupted" and not has_checkpoint and not config:
        # Killed before config.json and the step-0 checkpoint: nothing --resume could use.
        status, problem = "failed", problem or "killed before its first checkpoint: nothing to resume"

    last_epoch = scan.epochs[max(scan.epochs)] if scan.epochs else {}
    epochs_done, best, last_value, steps_done = _progress(scan, final, last_epoch)
    metric = _str(started.get("metric") or last_epoch.get("metric")
                  or (final or {}).get("metric") or _metric_for_task(config.get("task")))
    started_at = _parse_time(config.get("started_at")) or _first_mtime(path)
    duration = _duration(scan, status, started_at, last_update)
    message = _message(problem or scan.problem, scan, final, config)

    # Records come inert from records.parse; config.json's values and the directory's name
    # are made so here, where they become what every view of the run shows.
    return RunInfo(
        path=path, name=clean_line(name or path.name),
        model=_str(config.get("model") or started.get("model")) or "?",
        dataset=_str(config.get("dataset") or started.get("dataset")) or "?",
        status=status, epochs_done=epochs_done,
        epochs_total=_int(started.get("epochs"), None) or _int(config.get("epochs"), None),
        steps_done=steps_done, steps_total=_int(started.get("total_steps"), None),
        metric=metric, best_value=best, last_value=last_value, duration_s=duration,
        size_bytes=dir_size(path), started_at=started_at, last_update=last_update,
        task=_str(started.get("task") or config.get("task")),
        device=_str(started.get("device") or config.get("device_resolved")),
        paused=status == "running" and scan.paused,
        message=clean(message) if message is not None else None,
        failure_kind=_str((final or {}).get("kind")) if status == "failed" else None,
        sessions=scan.sessions,
        has_checkpoint=has_checkpoint, config=config,
    )


def _duration(scan: "_Scan", status: str, started_at: float | None,
              last_update: float | None) -> float | None:
    if (scan.sessions <= 1 and status not in ("finished", "stopped") and started_at
            and last_update):
        # One session not cleanly finished: its wall time is the best measure there is.
        return max(scan.duration_s or 0.0, last_update - started_at)
    return scan.duration_s


def _message(message: str | None, scan: "_Scan", final: dict | None,
             config: dict) -> str | None:
    if final is not None and final.get("type") == "Failed":
        return final.get("message") or "failed"
    if message is None and scan.unreadable and not scan.sessions and not config:
        return "metrics.jsonl has no readable records"
    return message


def _status(final: dict | None, alive) -> str:
    """The run's status from its last record; alive() (a process scan) only when it has none."""
    if final is not None and final.get("type") == "Finished":
        return final.get("status") if final.get("status") in STATUSES else "finished"
    if final is not None:
        return "failed"
    return "running" if alive() else "interrupted"


def _progress(scan: "_Scan", final: dict | None,
              last_epoch: dict) -> tuple[int, float | None, float | None, int]:
    """Epochs done, best and last metric value, steps done: from Finished when there is one,
    else from the last epoch seen."""
    if final is not None and final.get("type") == "Finished":
        return (_int(final.get("epochs_done"), len(scan.epochs)),
                _float(final.get("best_value")), _float(final.get("last_value")),
                _int(final.get("step"), scan.step))
    return (max(scan.epochs) + 1 if scan.epochs else 0, _float(last_epoch.get("best_value")),
            _float(last_epoch.get("value")), scan.step)


@dataclass
class _Scan:
    started: dict[str, Any] | None = None  # the last RunStarted
    sessions: int = 0
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)
    final: dict[str, Any] | None = None  # Finished/Failed ending the last session
    step: int = 0
    paused: bool = False
    duration_s: float | None = None
    unreadable: int = 0  # lines skipped: not JSON, too deep, too long
    problem: str | None = None  # why metrics.jsonl could not be read at all (a FIFO, a symlink)


def _scan_metrics(path: Path) -> _Scan:
    """One pass over metrics.jsonl. Step records (the bulk of the file) are not parsed except
    the last one; a resumed session rewinds epochs it will redo (see history.load_history)."""
    scan = _Scan()
    done_sessions_s = 0.0
    session_s = 0.0
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
        kind = rec["type"]
        if kind == "StepMetrics":  # written with other spacing than RunDir's
            scan.step = max(scan.step, _int(rec.get("step"), 0))
        elif kind == "RunStarted":
            if scan.sessions:
                done_sessions_s += session_s
            scan.sessions += 1
            session_s = 0.0
            scan.started, scan.final, scan.paused = rec, None, False
            start_epoch = _int(rec.get("start_epoch"), 0)
            scan.epochs = {e: r for e, r in scan.epochs.items() if e < start_epoch}
            scan.step = _int(rec.get("start_step"), 0)
            last_step_line = None
        elif kind == "EpochMetrics":
            epoch = _int(rec.get("epoch"), len(scan.epochs))
            scan.epochs[epoch] = rec
            scan.step = max(scan.step, _int(rec.get("step"), 0))
            session_s = _float(rec.get("elapsed_s")) or session_s
        elif kind == "Finished":
            scan.final = rec
            session_s = _float(rec.get("elapsed_s")) or session_s
        elif kind == "Failed":
            scan.final = rec
        elif kind == "StateChanged":
            scan.paused = rec.get("state") == "paused"
    if last_step_line is not None:
        rec = records.parse(last_step_line)
        if rec is not None:
            scan.step = max(scan.step, _int(rec.get("step"), 0))
    if scan.sessions:
        scan.duration_s = done_sessions_s + session_s
    scan.unreadable += stats.too_long
    scan.problem = stats.problem
    return scan


def _metric_for_task(task: Any) -> str | None:
    if task == "regression":
        return "mse"
    return "accuracy" if task else None


def _str(value: Any) -> str | None:
    # Fields read from files may be any JSON value; views expect one inert line or nothing.
    return None if value is None else clean_line(value)


def _int(value: Any, default: int | None) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _float(value: Any) -> float | None:
    return schema.number(value)  # the decoder's one rule (config.json values come here too)


def _parse_time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text[:64], fmt).timestamp()
        except (ValueError, OverflowError, OSError):
            continue
    return None


def _is_regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _newest_mtime(path: Path) -> float | None:
    times = []
    for name in (records.METRICS_FILE, records.CONFIG_FILE):
        try:
            times.append((path / name).stat().st_mtime)
        except OSError:
            pass
    return max(times) if times else None


def _first_mtime(path: Path) -> float | None:
    times = []
    for name in (records.CONFIG_FILE, records.METRICS_FILE):
        try:
            times.append((path / name).stat().st_mtime)
        except OSError:
            pass
    return min(times) if times else None


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
