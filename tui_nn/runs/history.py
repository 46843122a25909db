"""A run's recorded curves, rebuilt from metrics.jsonl for plots, comparison and export."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tui_nn.runs import records


@dataclass(frozen=True)
class EpochPoint:
    epoch: int  # 0-based
    step: int  # global step at the end of the epoch
    train_loss: float
    val_loss: float
    metric: str
    value: float
    best_value: float | None = None
    elapsed_s: float | None = None  # since the start of its session
    epoch_time_s: float | None = None
    samples_per_s: float | None = None


@dataclass
class RecordedHistory:
    """Step losses as parallel columns (8 bytes a step, so a million-step run stays small) and
    one EpochPoint per finished epoch.

    steps[i], step_epochs[i], losses[i], lrs[i] describe one optimiser step. The lr of a step is
    the lr when its chunk of steps was reported (the engine reports every ~0.2 s), exact without
    a schedule and within one chunk of exact with one."""

    path: Path
    metric: str | None = None
    steps: array = field(default_factory=lambda: array("q"))
    step_epochs: array = field(default_factory=lambda: array("q"))
    losses: array = field(default_factory=lambda: array("d"))
    lrs: array = field(default_factory=lambda: array("d"))
    epochs: list[EpochPoint] = field(default_factory=list)
    sessions: int = 0

    def step_rows(self) -> Iterator[tuple[int, int, float, float]]:
        """(step, epoch, loss, lr) in step order."""
        return zip(self.steps, self.step_epochs, self.losses, self.lrs)

    def _rewind(self, start_step: int, start_epoch: int) -> None:
        # A resumed session restarts from its checkpoint and redoes what came after it: the
        # redone steps replace the recorded ones, as in the run that the weights belong to.
        keep = len(self.steps)
        while keep and self.steps[keep - 1] > start_step:
            keep -= 1
        for column in (self.steps, self.step_epochs, self.losses, self.lrs):
            del column[keep:]
        self.epochs = [e for e in self.epochs if e.epoch < start_epoch]


def load_history(run_dir: str | Path) -> RecordedHistory:
    """Read a run's steps and epochs. A missing or damaged metrics.jsonl gives what could be
    read (possibly nothing), never an error. Records come type-checked and inert from
    records.iter_records; one without a field these need is skipped."""
    history = RecordedHistory(path=Path(run_dir))
    for rec in records.iter_records(run_dir):
        kind = rec["type"]
        try:
            if kind == "StepMetrics":
                _add_steps(history, rec)
            elif kind == "EpochMetrics":
                _add_epoch(history, rec)
            elif kind == "RunStarted":
                history.sessions += 1
                history.metric = rec.get("metric") or history.metric
                history._rewind(rec.get("start_step") or 0, rec.get("start_epoch") or 0)
        except (KeyError, MemoryError):
            continue  # a record without a field these need: skip it, keep the rest
    return history


def _add_steps(history: RecordedHistory, rec: dict[str, Any]) -> None:
    losses, first, epoch = _needed(rec, "losses", "first_step", "epoch")
    lr = rec.get("lr") or 0.0
    # Overlap with recorded steps happens only when a resume rewound less than it redid.
    while history.steps and history.steps[-1] >= first:
        for column in (history.steps, history.step_epochs, history.losses, history.lrs):
            column.pop()
    history.steps.extend(range(first, first + len(losses)))
    history.step_epochs.extend([epoch] * len(losses))
    history.losses.extend(losses)
    history.lrs.extend([lr] * len(losses))


def _add_epoch(history: RecordedHistory, rec: dict[str, Any]) -> None:
    point = EpochPoint(
        *_needed(rec, "epoch", "step", "train_loss", "val_loss", "metric", "value"),
        best_value=rec.get("best_value"), elapsed_s=rec.get("elapsed_s"),
        epoch_time_s=rec.get("epoch_time_s"), samples_per_s=rec.get("samples_per_s"))
    history.epochs = [e for e in history.epochs if e.epoch < point.epoch]
    history.epochs.append(point)
    history.metric = history.metric or point.metric


def _needed(rec: dict[str, Any], *names: str) -> tuple[Any, ...]:
    """The record's values of names (type-checked by records.parse); KeyError when one is
    absent or null."""
    values = tuple(rec.get(name) for name in names)
    if None in values:
        raise KeyError(names)
    return values
