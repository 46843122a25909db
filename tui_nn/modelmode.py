"""A model in train or eval mode for a block, its own mode restored afterwards: what measures,
predicts or probes a model (engine, insight, shapes, data) leaves it as it found it. In the
lowest layer so that all of them share it."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


@contextlib.contextmanager
def in_mode(model: nn.Module, training: bool) -> Iterator[None]:
    """`model` in train mode (training=True) or eval mode for the block; its mode restored."""
    was_training = model.training
    model.train(training)
    try:
        yield
    finally:
        model.train(was_training)
