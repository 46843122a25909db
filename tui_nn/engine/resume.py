"""Is `--resume PATH` going to work? Answered from the run's files without torch, so the CLI
refuses a bad resume at once (and before the app opens). The Trainer checks the same rules
again against the checkpoint itself (engine/setup.py)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from tui_nn.engine.config import ConfigError, TrainConfig, resume_config
from tui_nn.engine.rundir import (CONFIG_FILE, LAST_CHECKPOINT, METRICS_FILE,
                                  checkpoint_file_given, lock_holder, lock_is_held, run_dir_of)


def resume_command(run_dir: str | Path, headless: bool = True) -> str:
    """The exact command that continues a run."""
    return f"tui-nn train --resume {shlex.quote(str(run_dir))}" + (" --headless" if headless
                                                                    else "")


def check_resume(path: str | Path, requested: dict[str, Any], *, check_lock: bool = True) -> Path:
    """The run directory PATH means, or ConfigError saying why it cannot be resumed.
    check_lock=False for the torchrun workers other than rank 0 (rank 0 holds the lock)."""
    p = Path(path)
    if not (p.exists() or p.is_symlink()):
        raise ConfigError(f"--resume: {path} does not exist")
    run = run_dir_of(p)
    config_path = run / CONFIG_FILE
    given = checkpoint_file_given(p)  # loaded (and judged) by the trainer itself
    if given is None and not (run / LAST_CHECKPOINT).exists() and not config_path.is_file():
        raise ConfigError(f"--resume: {run} holds no run: no checkpoint ({LAST_CHECKPOINT}) "
                          f"and no {CONFIG_FILE}")
    if check_lock and lock_is_held(run):
        holder = lock_holder(run)
        raise ConfigError(f"--resume: {run} is training in process {holder or '?'}; "
                          "watch it with `tui-nn watch` instead")
    saved = _saved_config(config_path)
    if saved is not None:
        done, finished = progress(run)
        resume_config(saved, requested, str(run), done, finished)
    return run


def _saved_config(path: Path) -> TrainConfig | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TrainConfig.from_dict(data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError, RecursionError):
        return None  # the Trainer reads the checkpoint's own copy and says what is wrong


def progress(run: Path) -> tuple[int, bool]:
    """(epochs done at the last checkpoint, finished?) from metrics.jsonl, reading only the
    lines that matter (a long run holds millions of step records)."""
    done, finished = 0, False
    try:
        f = open(run / METRICS_FILE, "rb")
    except OSError:
        return done, finished
    with f:
        for line in f:
            if b'"CheckpointSaved"' not in line and b'"Finished"' not in line \
                    and b'"RunStarted"' not in line:
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            kind = record.get("type") if isinstance(record, dict) else None
            if kind == "CheckpointSaved" and record.get("reason") != "best":
                done, finished = int(record.get("epoch") or 0), False
            elif kind == "Finished":
                finished = record.get("status") == "finished"
                done = int(record.get("epochs_done") or done)
            elif kind == "RunStarted":
                finished = False
    return done, finished
