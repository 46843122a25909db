"""The training engine (no UI imports): Trainer, events, config, checkpoints, run directories."""

from tui_nn.engine.config import OPTIMIZERS, SCHEDULES, ConfigError, TrainConfig
from tui_nn.engine.trainer import Trainer, TrainingError

__all__ = ["OPTIMIZERS", "SCHEDULES", "ConfigError", "TrainConfig", "Trainer", "TrainingError"]
