"""`tui-nn export RUN --csv`: a run's metrics as CSV files any tool reads.

Format (one header row, comma-separated, '.' decimals, floats in repr precision):

  metrics_steps.csv   step,epoch,loss,lr
                      one row per optimiser step; step is 1-based and global, epoch 0-based;
                      lr as reported with the step's chunk (see RecordedHistory).
  metrics_epochs.csv  epoch,step,train_loss,val_loss,metric,value,best_value,elapsed_s,
                      epoch_time_s,samples_per_s
                      one row per finished epoch; metric names what value is ("accuracy" in
                      [0, 1] or "mse"); elapsed_s counts from the start of the epoch's session.

Both are written into the run directory unless another directory is given; a resumed run's
redone steps appear once. Files are replaced atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tui_nn.runs.history import RecordedHistory, load_history

STEPS_FILE = "metrics_steps.csv"
EPOCHS_FILE = "metrics_epochs.csv"
STEP_COLUMNS = ("step", "epoch", "loss", "lr")
EPOCH_COLUMNS = ("epoch", "step", "train_loss", "val_loss", "metric", "value", "best_value",
                 "elapsed_s", "epoch_time_s", "samples_per_s")


@dataclass(frozen=True)
class CsvExport:
    steps_path: Path
    epochs_path: Path
    n_steps: int
    n_epochs: int


def export_csv(run_dir: str | Path, out_dir: str | Path | None = None) -> CsvExport:
    """Write metrics_steps.csv and metrics_epochs.csv for the run into out_dir (default: the
    run directory, created if needed). OSError propagates: the caller says where it failed."""
    history = load_history(run_dir)
    target = Path(out_dir) if out_dir is not None else Path(run_dir)
    target.mkdir(parents=True, exist_ok=True)
    steps_path, epochs_path = target / STEPS_FILE, target / EPOCHS_FILE
    _atomic_write(steps_path, lambda f: write_steps_csv(history, f))
    _atomic_write(epochs_path, lambda f: write_epochs_csv(history, f))
    return CsvExport(steps_path, epochs_path, len(history.steps), len(history.epochs))


def write_steps_csv(history: RecordedHistory, out: TextIO) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(STEP_COLUMNS)
    for step, epoch, loss, lr in history.step_rows():
        w.writerow((step, epoch, _num(loss), _num(lr)))


def write_epochs_csv(history: RecordedHistory, out: TextIO) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(EPOCH_COLUMNS)
    for e in history.epochs:
        w.writerow((e.epoch, e.step, _num(e.train_loss), _num(e.val_loss), e.metric,
                    _num(e.value), _num(e.best_value), _num(e.elapsed_s), _num(e.epoch_time_s),
                    _num(e.samples_per_s)))


def _num(value: float | None) -> str:
    # Empty for "not recorded"; nan/inf spelled the way pandas and numpy read them back.
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    return repr(float(value))


def _atomic_write(path: Path, write) -> None:
    """Build the text, then write it through tui_nn.fsio (unique temp, fsync, rename: never
    through a planted symlink)."""
    import io

    from tui_nn.fsio import atomic_write_text
    buf = io.StringIO(newline="")
    write(buf)
    atomic_write_text(path, buf.getvalue())