"""Lessons that train: runners that drive the engine's Trainer for a lesson view (the sequence
models' accuracy table, the overfitting comparison). Above the engine; the insight package
below it only computes."""

from __future__ import annotations

import threading
from typing import Any, Callable


def train_epochs(cfg: Any, on_epoch: Callable[[Any], None], stop: threading.Event | None,
                 failed: str, **trainer_kwargs: Any) -> None:
    """Run the Trainer on cfg, handing on_epoch each EpochMetrics; stop (set from another
    thread) ends it early; a failed run raises RuntimeError(f"{failed}: {its message}")."""
    from tui_nn.engine.events import EpochMetrics, Failed
    from tui_nn.engine.trainer import Trainer

    trainer: Trainer

    def callback(event: object) -> None:
        if isinstance(event, EpochMetrics):
            on_epoch(event)
        if stop is not None and stop.is_set():
            trainer.stop()

    trainer = Trainer(cfg, callback, **trainer_kwargs)
    result = trainer.run()
    if isinstance(result, Failed):
        raise RuntimeError(f"{failed}: {result.message}")
