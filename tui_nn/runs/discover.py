"""Finding run directories: under a root and one level of grouping below it."""

from __future__ import annotations

import contextlib
import difflib
import os
from pathlib import Path
from typing import TypeVar

from tui_nn.runs import liveness, tensorboard
from tui_nn.runs.info import RunInfo, read_run_info
from tui_nn.runs.records import is_run_dir

DEFAULT_ROOT = "runs"
T = TypeVar("T")


class RunNotFound(LookupError):
    """A run name or path that matches no run directory; the message says what to do."""


def run_dirs(root: str | Path = DEFAULT_ROOT) -> list[Path]:
    """Run directories in root: root itself if it is one, else its children that are runs, and
    the runs one level further down (runs/sweep-lr/<run>, lightning_logs/version_0). A run's
    own subfolders are not searched. Unreadable folders are skipped. A TensorBoard log
    directory of any framework counts as a run (see runs.tensorboard)."""
    root = Path(root)
    if is_listed(root):
        return [root]
    found = []
    for child in _subdirs(root):
        if is_listed(child):
            found.append(child)
        else:
            found.extend(g for g in _subdirs(child) if is_listed(g))
    return found


def is_listed(path: Path) -> bool:
    """A tui-nn run directory or a TensorBoard log directory."""
    return is_run_dir(path) or tensorboard.is_tensorboard_dir(path)


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(path)
                      if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def discover_runs(root: str | Path = DEFAULT_ROOT, *, check_writers: bool = True,
                  live_window_s: float = liveness.DEFAULT_LIVE_WINDOW_S) -> list[RunInfo]:
    """Every run under root, newest first (by start time, then name). A missing root gives
    [], never an error. See liveness for how "running" is told from "interrupted"."""
    root = Path(root)
    dirs = run_dirs(root)
    writers = liveness.writers_of_metrics_files() if check_writers and dirs else None
    infos = [_read_or_note(d, _name(d, root), writers, check_writers, live_window_s)
             for d in dirs]
    infos.sort(key=lambda r: (r.started_at or r.last_update or 0.0, r.name), reverse=True)
    return infos


def _read_or_note(path: Path, name: str, writers: set[str] | None, check_writers: bool,
                  live_window_s: float) -> RunInfo:
    """read_run_info, or a RunInfo that says the run could not be read: one bad run (content
    nobody foresaw) never hides the good ones."""
    try:
        return read_run_info(path, name=name, writers=writers, check_writers=check_writers,
                             live_window_s=live_window_s)
    except Exception as e:  # noqa: BLE001 - any failure is this run's, not the listing's
        return RunInfo(path=path, name=name, model="?", dataset="?", status="interrupted",
                       message=f"unreadable run: {type(e).__name__}: {e}")


def _name(run: Path, root: Path) -> str:
    try:
        rel = run.relative_to(root).as_posix()
    except ValueError:
        return run.name
    return rel if rel != "." else run.name


def newest_run(root: str | Path = DEFAULT_ROOT) -> RunInfo | None:
    return next(iter(discover_runs(root)), None)


def resolve_run(name: str | Path, root: str | Path = DEFAULT_ROOT) -> Path:
    """A run directory from what a user typed: a path to a run directory, a run's name under
    root ("20250101-120000-cnn-mnist" or "sweep/run-a"), "latest" for the newest run, or a
    unique prefix of a name. Raises RunNotFound with a message fit to show as is."""
    text = str(name)
    path = Path(text).expanduser()
    if is_listed(path):
        return path
    root = Path(root)
    if is_listed(root / text):
        return root / text
    if text in ("latest", "last"):
        newest = newest_run(root)
        if newest is None:
            raise RunNotFound(f"no runs under {root}/ yet")
        return newest.path
    if path.exists():
        raise RunNotFound(f"{text} is not a run directory (no config.json or metrics.jsonl) "
                          "nor a TensorBoard log directory (no events.out.tfevents.* files)")
    names = {_name(d, root): d for d in run_dirs(root)}
    key = text
    with contextlib.suppress(ValueError, OSError):  # "runs/cnn-" names a prefix as "cnn-" does
        key = path.resolve().relative_to(root.resolve()).as_posix()
    return pick_by_name(text, names, str(root), key)


def pick_by_name(text: str, names: dict[str, T], root: str, key: str | None = None) -> T:
    """names[the run `text` names]: its name, or a unique prefix of its name or last part
    (key: text as a name under root, when it differs); RunNotFound saying why otherwise.
    Remote runs (runs.remote) are named by the same rule."""
    key = text if key is None else key
    if key in names:
        return names[key]
    matches = [n for n in names if n.startswith(key) or Path(n).name.startswith(key)]
    if len(matches) == 1:
        return names[matches[0]]
    if len(matches) > 1:
        shown = ", ".join(sorted(matches)[:5]) + (", ..." if len(matches) > 5 else "")
        raise RunNotFound(f"'{text}' matches {len(matches)} runs ({shown}): be more specific")
    close = difflib.get_close_matches(key, list(names), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else " See `tui-nn runs`."
    raise RunNotFound(f"no run '{text}': not a run directory, and no run by that name under "
                      f"{root}/.{hint}")
