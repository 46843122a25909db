"""Is `--resume PATH` going to work? Answered from the run's files without torch, so the CLI
refuses a bad resume at once (and before the app opens). The Trainer checks the same rules
again against the checkpoint itself (engine/setup.py)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from tui_nn.engine import jsonl, schema
from tui_nn.engine.config import ConfigError, TrainConfig, resume_config
from tui_nn.engine.rundir import (CONFIG_FILE, LAST_CHECKPOINT, METRICS_FILE, check_owner,
                                  checkpoint_file_given, lock_holder, lock_is_held, run_dir_of)


def resume_command(run_dir: str | Path, headless: bool = True) -> str:
    """The exact command that continues a run."""
    return f"tui-nn train --resume {shlex.quote(str(run_dir))}" + (" --headless" if headless
                                                                    else "")


def check_resume(path: str | Path, requested: dict[str, Any], *, check_lock: bool = True) -> Path:
    """The run directory PATH means, or ConfigError saying why it cannot be resumed.
    check_lock=False for the torchrun workers other than rank 0 (rank 0 holds the lock).
    The run's files are read as the app reads them (engine/jsonl.py: regular files only, never
    through a symlink, bounded), so a FIFO or a link to /dev/zero is refused, not waited on."""
    p = Path(path)
    if not (p.exists() or p.is_symlink()):
        raise ConfigError(f"--resume: {path} does not exist")
    run = run_dir_of(p)
    given = checkpoint_file_given(p)  # loaded (and judged) by the trainer itself
    has_checkpoint = given is not None or (run / LAST_CHECKPOINT).exists()
    if not has_checkpoint and not os.path.lexists(run / CONFIG_FILE):
        raise ConfigError(f"--resume: {run} holds no run: no checkpoint ({LAST_CHECKPOINT}) "
                          f"and no {CONFIG_FILE}")
    check_owner(run)  # RunDirError: another user's, or writable by every user
    if check_lock and lock_is_held(run):
        raise ConfigError(f"--resume: {run} is training in process {lock_holder(run) or '?'}; "
                          "watch it with `tui-nn watch` instead")
    _check_metrics_file(run)
    try:
        saved = read_saved_config(run)
    except ConfigError:
        if not has_checkpoint:
            raise
        return run  # the Trainer reads the checkpoint's own copy and says what is wrong
    done, finished = progress(run)
    resume_config(saved, requested, str(run), done, finished)
    return run


def read_saved_config(run: Path) -> TrainConfig:
    """A run's config.json as a TrainConfig, or ConfigError with the reason in words."""
    path = run / CONFIG_FILE
    try:
        return TrainConfig.from_dict(jsonl.read_json_file(path))
    except FileNotFoundError:
        raise ConfigError(f"--resume: {run} holds no run: no checkpoint ({LAST_CHECKPOINT}) "
                          f"and no {CONFIG_FILE}") from None
    except jsonl.BadJsonFile as e:
        raise ConfigError(f"--resume: unreadable {CONFIG_FILE}: {e}") from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"--resume: unreadable {path}: {e}") from None


def _check_metrics_file(run: Path) -> None:
    # The trainer appends to it: a FIFO would block that open, a symlink is never followed.
    try:
        jsonl.open_regular(run / METRICS_FILE).close()
    except FileNotFoundError:
        pass
    except (OSError, jsonl.BadJsonFile) as e:
        raise ConfigError(f"--resume: {e}: resume a run whose {METRICS_FILE} is a plain "
                          "file") from None


_PROGRESS_TYPES = (b'"CheckpointSaved"', b'"Finished"', b'"RunStarted"')


def progress(run: Path) -> tuple[int, bool]:
    """(epochs done at the last checkpoint, finished?) from metrics.jsonl, decoding only the
    lines that matter (a long run holds millions of step records). A record of those types
    with a field of the wrong type (an epoch of 1e400 or "abc") is ConfigError: it decides
    where the run goes on, so it is not guessed."""
    done, finished = 0, False
    stats = jsonl.LineStats()
    for n, line in enumerate(jsonl.iter_file_lines(run / METRICS_FILE, stats), 1):
        if not any(t in line for t in _PROGRESS_TYPES):
            continue
        record = jsonl.parse_record(line)
        kind = record.get("type") if record is not None else None
        if kind not in ("CheckpointSaved", "Finished", "RunStarted"):
            continue
        if schema.checked(record) is None:
            raise ConfigError(f"--resume: {run / METRICS_FILE} line {n}: {schema.why_bad(record)}"
                              " (edited or damaged; the run cannot tell where to go on)")
        if kind == "CheckpointSaved" and record.get("reason") != "best":
            done, finished = record["epoch"], False
        elif kind == "Finished":
            finished = record.get("status") == "finished"
            done = record["epochs_done"] or done
        else:
            finished = False
    return done, finished
