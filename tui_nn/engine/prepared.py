"""Prepared: everything setup() builds before a run's first step, in one typed object.

The Trainer holds one (a Trainer attribute named as a field here reads and writes the field:
``trainer.model`` is ``trainer.prep.model``). The helpers (checkpoint, recovery, reports,
validation, oom, the step plugins, the batch stream, the insight hooks) take a Prepared and
the RunState (engine/state.py, where the run is) as arguments and never import the Trainer,
so no module of the engine imports another in a loop.

Fields are None until setup fills them, in its order (engine/setup.py); a run that fails
midway is closed, and its out-of-memory answer given, from what was built."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from tui_nn.data import tasks
from tui_nn.engine.config import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.distributed import DistInfo
    from tui_nn.engine.events import Event
    from tui_nn.engine.plugins import StepPlugin
    from tui_nn.engine.rundir import RunDir


@dataclass(eq=False)
class Prepared:
    config: TrainConfig  # a resume's merged config, resolved against the zoo's defaults
    emit: Callable[["Event"], None]  # the run's writers (Trainer.emit)
    device: torch.device | None = None
    dist: "DistInfo | None" = None
    dataset: Any = None  # data/base.py's Dataset, its tensors the device copies below
    task: str | None = None
    loss_task: str | None = None  # the task, or "binary-logits" for a logits head
    fit_note: str = ""  # how the model fits the data, said in the run's first line
    model: nn.Module | None = None
    # forward_model: what a training step calls (DDP, then torch.compile, around the model);
    # eager_model: the same uncompiled; eval_model: what validation calls; compiled_batch: the
    # one batch size the compiled models take (setup.wrap_model).
    forward_model: nn.Module | None = None
    eager_model: nn.Module | None = None
    eval_model: nn.Module | None = None
    compiled_batch: int | None = None
    channels_last: bool = False
    amp_dtype: torch.dtype | None = None
    scaler: Any = None  # torch.amp.GradScaler, disabled unless fp16
    optimizer: Any = None  # the one whose lr the controls scale and StepMetrics report
    scheduler: Any = None
    generator: torch.Generator | None = None  # the shuffle's
    batch_size: int | None = None
    steps_per_epoch: int = 0
    total_steps: int = 0
    train_x: torch.Tensor | None = None  # (N, *input_shape) on the device
    train_y: torch.Tensor | None = None
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None
    stream: Any = None  # engine/loader.py's BatchStream: your own Dataset, streamed
    pixel_norm: Any = None  # data/base.py's PixelNorm when images are kept as uint8
    augment: Any = None
    step_plugin: "StepPlugin | None" = None  # a zoo entry's own step (engine/plugins.py)
    insight: Any = None  # LiveInsight when the config asks for live insight events
    run_dir: "RunDir | None" = None  # rank 0 of a saving run only
    tensorboard: Any = None  # the TensorBoard sink (engine/tensorboard.py)
    # Where records go, in order, before the Trainer's callback: metrics.jsonl and TensorBoard
    # (setup adds them with the run directory, rank 0 of a saving run only).
    writers: list[Callable[["Event"], None]] = field(default_factory=list)
    channel: Any = None  # the control channel (engine/channel.py), rank 0 only
    resume_changes: dict[str, list] = field(default_factory=dict)
    measured_memory: dict[str, Any] | None = None  # setup.measure_memory
    notices: list[str] = field(default_factory=list)  # said right after RunStarted

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Stored samples x (b, ...) as model inputs: uint8 images normalised (b, C, H, W)."""
        return x if self.pixel_norm is None else self.pixel_norm(x)

    def forward(self, model: nn.Module, xb: torch.Tensor) -> torch.Tensor:
        """model(xb) under the run's autocast; the output in fp32 for the losses."""
        if self.amp_dtype is None:
            return model(xb)
        with torch.autocast(self.device.type, dtype=self.amp_dtype):
            out = model(xb)
        return out.float()  # losses (BCE above all) are computed in fp32

    def probe_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A differentiable loss of batch x, no optimizer step (thread timing, the batch that
        fits): the step plugin's own, else the task's loss of the model under the autocast."""
        if self.step_plugin is not None:
            return self.step_plugin.probe_loss(x, y)
        return tasks.loss_mean(self.loss_task, self.forward(self.model, x), y)

    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def metric_name(self) -> str:
        """The task's metric, or a step plugin's own: the GAN's is D's accuracy, which no run
        list may rank as the model's accuracy."""
        return getattr(self.step_plugin, "metric", None) or tasks.metric_name(self.task)
