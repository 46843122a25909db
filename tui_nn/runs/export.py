"""`tui-nn export RUN --csv`: a run's metrics as CSV files any tool reads.

Format (one header row, comma-separated, '.' decimals, floats in repr precision):

  metrics_steps.csv   step,epoch,loss,lr[,SCALAR...]
                      one row per optimiser step; step is 1-based and global, epoch 0-based;
                      lr as reported with the step's chunk (see RecordedHistory). Then one
                      column per other scalar the run logged with its steps (a GAN's d_loss and
                      g_loss, a Lightning module's train_mse), filled on the row of the step it
                      was reported at (each report's last step) and empty on the others.
  metrics_epochs.csv  epoch,step,train_loss,val_loss,metric,value,best_value,elapsed_s,
                      epoch_time_s,samples_per_s[,SCALAR...]
                      one row per finished epoch; metric names what value is ("accuracy" in
                      [0, 1] or "mse"); elapsed_s counts from the start of the epoch's session.
                      Then one column per other scalar the run logged with its epochs.

A scalar whose name is already a column's gets the column `scalars.NAME`.

Both are written into the run directory unless another directory is given; a resumed run's
redone steps appear once. Files are replaced atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tui_nn.runs import records
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
    extra = load_scalars(run_dir)
    _atomic_write(steps_path, lambda f: write_steps_csv(history, f, extra.steps))
    _atomic_write(epochs_path, lambda f: write_epochs_csv(history, f, extra.epochs))
    return CsvExport(steps_path, epochs_path, len(history.steps), len(history.epochs))


@dataclass
class RecordedScalars:
    """The scalars a run logged beside its loss: steps[step] and epochs[epoch] map each name
    to its value (a resumed session's values replace the ones of the steps it redid)."""

    steps: dict[int, dict[str, float]]
    epochs: dict[int, dict[str, float]]


def load_scalars(run_dir: str | Path) -> RecordedScalars:
    out = RecordedScalars({}, {})
    for rec in records.iter_records(run_dir):
        kind = rec.get("type")
        try:
            if kind == "RunStarted":
                step, epoch = int(rec.get("start_step") or 0), int(rec.get("start_epoch") or 0)
                out.steps = {k: v for k, v in out.steps.items() if k <= step}
                out.epochs = {k: v for k, v in out.epochs.items() if k < epoch}
            elif kind == "StepMetrics":
                out.steps[int(rec["step"])] = _numbers(rec.get("scalars"))
            elif kind == "EpochMetrics":
                out.epochs[int(rec["epoch"])] = _numbers(rec.get("scalars"))
        except (TypeError, ValueError, KeyError, OverflowError):
            continue  # a record of an unexpected shape: skip it, as load_history does
    return out


def _numbers(scalars: object) -> dict[str, float]:
    if not isinstance(scalars, dict):
        return {}
    return dict(scalars)  # names inert and values floats from records.parse


def _columns(fixed: tuple[str, ...], rows: dict[int, dict[str, float]]) -> list[tuple[str, str]]:
    """(scalar name, column name) for every name in rows, in the order they first appear."""
    names = dict.fromkeys(name for values in rows.values() for name in values)
    return [(n, f"scalars.{n}" if n in fixed else n) for n in names]


def write_steps_csv(history: RecordedHistory, out: TextIO,
                    scalars: dict[int, dict[str, float]] | None = None) -> None:
    scalars = scalars or {}
    extra = _columns(STEP_COLUMNS, scalars)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(STEP_COLUMNS + tuple(column for _, column in extra))
    for step, epoch, loss, lr in history.step_rows():
        values = scalars.get(step, {})
        w.writerow((step, epoch, _num(loss), _num(lr), *(_num(values.get(n)) for n, _ in extra)))


def write_epochs_csv(history: RecordedHistory, out: TextIO,
                     scalars: dict[int, dict[str, float]] | None = None) -> None:
    scalars = scalars or {}
    extra = _columns(EPOCH_COLUMNS, scalars)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(EPOCH_COLUMNS + tuple(column for _, column in extra))
    for e in history.epochs:
        values = scalars.get(e.epoch, {})
        w.writerow((e.epoch, e.step, _num(e.train_loss), _num(e.val_loss), e.metric,
                    _num(e.value), _num(e.best_value), _num(e.elapsed_s), _num(e.epoch_time_s),
                    _num(e.samples_per_s), *(_num(values.get(n)) for n, _ in extra)))


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