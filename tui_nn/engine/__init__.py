"""The training engine (no UI imports): Trainer, events, config, checkpoints, run directories.

Trainer is imported on first use, so that ``tui_nn.engine.config`` (validation of the CLI's
options before the app opens) does not import torch."""

from tui_nn.engine.config import OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig
from tui_nn.engine.errors import TrainingError

__all__ = ["OPTIMIZERS", "SCHEDULES", "ConfigError", "TrainConfig", "Trainer", "TrainingError"]


def __getattr__(name: str):
    if name == "Trainer":
        from tui_nn.engine.trainer import Trainer

        return Trainer
    raise AttributeError(f"module 'tui_nn.engine' has no attribute {name!r}")
