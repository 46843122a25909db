"""What the engine reports. Frozen dataclasses passed to one callback; consumers (the headless
console, the TUI bridge, metrics.jsonl, tests) decide what to do with them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    def to_dict(self) -> dict[str, Any]:
        return {"type": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    run_dir: str | None
    model: str
    dataset: str
    device: str
    device_name: str
    task: str
    metric: str  # "accuracy" or "mse"
    n_train: int
    n_val: int
    epochs: int
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    parameters: int
    start_epoch: int = 0
    start_step: int = 0
    # A resumed session's changed settings: {name: [before, now]} (e.g. a longer --epochs).
    changes: dict[str, Any] = field(default_factory=dict)
    # How the model fits the data: head size, the loss, augmentation ("3 classes: head
    # Linear(320, 3), CrossEntropyLoss"); said in the run's first line.
    setup: str = ""
    # What one training forward really saved at setup (setup.measure_memory): {"batch_size",
    # "saved_activation_bytes", "rss_bytes"}; None when not measured (and in older records).
    memory_measured: dict[str, Any] | None = None


@dataclass(frozen=True)
class StepMetrics(Event):
    """A chunk of consecutive steps: losses[i] belongs to step first_step + i.

    Losses are gathered on the device and read in one go, so the step loop never syncs."""

    epoch: int  # 0-based
    step: int  # global step count after the last step in this chunk
    first_step: int
    losses: tuple[float, ...]
    lr: float
    samples_per_s: float
    eta_s: float | None
    epoch_step: int  # steps done in this epoch
    steps_per_epoch: int
    total_steps: int
    memory_bytes: int | None = None
    # The share (0..1) of the chunk's time the step loop waited for its batches from a
    # DataLoader (streamed data); None when the data is in memory on the device.
    data_wait: float | None = None
    # More per-report values beside the loss (a GAN's D and G losses, a loop's own metrics):
    # the last value of each at the chunk's last step.
    scalars: dict[str, float] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return sum(self.losses) / len(self.losses)


@dataclass(frozen=True)
class EpochMetrics(Event):
    epoch: int  # 0-based, the epoch just finished
    step: int
    train_loss: float
    val_loss: float
    metric: str
    value: float  # accuracy in [0, 1] or mse
    best_value: float
    is_best: bool
    elapsed_s: float
    epoch_time_s: float
    samples_per_s: float
    decoded: str | None = None  # sequence task: the model's current output for the first sample
    scalars: dict[str, float] = field(default_factory=dict)  # more per-epoch values


@dataclass(frozen=True)
class CheckpointSaved(Event):
    path: str
    step: int
    epoch: int
    reason: str  # "epoch", "best", "periodic", "requested", "stop", "start"


@dataclass(frozen=True)
class StateChanged(Event):
    state: str  # "running", "paused"


@dataclass(frozen=True)
class NonFiniteLoss(Event):
    """The loss was NaN/Inf (TrainConfig.on_nan == "pause"): the weights were rolled back to
    last.pt and the run paused. Resume goes on from the next batch (with a lower lr after
    LrScaled, if the user lowered it); stop checkpoints the rolled-back weights."""

    epoch: int
    step: int  # the global step whose loss was not finite (1-based, like the message)
    value: float
    message: str
    rolled_back_to: int = 0  # the step of the checkpoint the weights came from


@dataclass(frozen=True)
class LrScaled(Event):
    """The learning rate was scaled while training (the app's 'halve the lr' after a NaN)."""

    step: int
    factor: float
    lr: float  # the first parameter group's lr afterwards


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know that does not stop the run (e.g. TensorBoard logging
    switched itself off after a write error)."""

    message: str
    source: str = "engine"


@dataclass(frozen=True)
class Finished(Event):
    status: str  # "finished" or "stopped"
    run_dir: str | None
    epochs_done: int
    step: int
    metric: str
    best_value: float | None
    last_value: float | None
    elapsed_s: float


@dataclass(frozen=True)
class Failed(Event):
    message: str
    kind: str = "error"  # "error", "nan", "oom", "data", "shape", "fit", "disk", "usage",
    # "checkpoint"
    run_dir: str | None = None
    step: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


# ---- live insight events (only when the config asks; the callback only: not in metrics.jsonl) -

@dataclass(frozen=True)
class GradientFlow(Event):
    """Per-layer gradient statistics read after backward, before the optimizer step."""

    epoch: int
    step: int  # the step whose gradients these are (1-based, like StepMetrics.step)
    snapshot: Any  # tui_nn.insight.gradflow.GradientSnapshot (its warnings: new episodes only)


@dataclass(frozen=True)
class FitUpdate(Event):
    """A 1-D model's data and current prediction line."""

    epoch: int
    step: int
    snapshot: Any  # tui_nn.insight.fit.FitSnapshot


@dataclass(frozen=True)
class ValPredictions(Event):
    """What the epoch's validation pass predicted: a confusion matrix, and sample images
    (misclassified first) when the inputs are images."""

    epoch: int  # 0-based, the epoch just evaluated
    step: int
    confusion: Any  # tui_nn.insight.classify.ConfusionMatrix
    samples: tuple[Any, ...] = ()  # tui_nn.insight.classify.GridSample


@dataclass(frozen=True)
class GeneratedSamples(Event):
    """A generative model's pictures of the same fixed noise after each epoch (the GAN)."""

    epoch: int  # 0-based, the epoch just finished
    step: int
    images: tuple[Any, ...] = ()  # (H, W) lists of gray levels in [0, 1]


LIVE_ONLY = (GradientFlow, FitUpdate, ValPredictions, GeneratedSamples)


# ---- the events metrics.jsonl holds, by their "type" (engine/schema.py decodes them) ----------
PERSISTED: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (RunStarted, StepMetrics, EpochMetrics, CheckpointSaved,
                                  StateChanged, NonFiniteLoss, LrScaled, Notice, Finished,
                                  Failed)}
