"""Messages the training bridge posts to the UI: one per engine event that matters.

The bridge's worker thread creates these and posts them; handlers in the screen update widgets.
Each carries the engine's frozen event unchanged, so the UI sees exactly what metrics.jsonl and
the headless console see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # the engine imports torch; this module is imported before the first frame
    from tui_nn.engine import events as ev


class RunMessage(Message):
    """What the bridge (and the run's own workers) post to the main screen; its one handler
    passes them all to the RunController."""


@dataclass
class TrainingStarted(RunMessage):
    """The engine set up the run (data loaded, model on the device)."""

    event: ev.RunStarted


class RecordedHistoryLoaded(RunMessage):
    """A resumed run's recorded steps and epochs are in the RunHistory: the curves can show
    them while the engine is still loading data and the checkpoint."""


@dataclass
class TrainingProgress(RunMessage):
    """The newest step metrics and epoch metrics (either may be None early in a run).

    Replaceable: if the UI is behind, only the newest is handled. Nothing is lost by that: every
    step's loss and every epoch's metrics are already in the RunHistory store."""

    step: "ev.StepMetrics | None"
    epoch: "ev.EpochMetrics | None"

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingProgress)


@dataclass
class CheckpointWritten(RunMessage):
    """A checkpoint was written (atomically) to disk."""

    event: ev.CheckpointSaved


@dataclass
class TrainingStateChanged(RunMessage):
    """The engine paused or resumed."""

    event: ev.StateChanged


@dataclass
class TrainingAlert(RunMessage):
    """The engine needs the user: the loss went NaN/Inf and the run paused (NonFiniteLoss), it
    confirms a control that changed the run (LrScaled), or it has news (Notice: a decode's
    progress, images skipped)."""

    event: ev.NonFiniteLoss | ev.LrScaled | ev.Notice


@dataclass
class TrainingEnded(RunMessage):
    """The run is over: Finished (finished or stopped) or Failed."""

    event: ev.Finished | ev.Failed


@dataclass
class GradientWarnings(RunMessage):
    """The gradient monitor saw a layer start vanishing, die or explode (for the event log).
    Not replaceable: each warning is logged once."""

    step: int
    warnings: tuple[str, ...]
