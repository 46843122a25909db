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
    """`model` in train mode (training=True) or eval mode for the block; afterwards each of its
    modules is back in its own mode (a part the user froze in eval mode stays so)."""
    modes = {m: m.training for m in model.modules()}
    model.train(training)
    try:
        yield
    finally:
        for module, was_training in modes.items():
            module.training = was_training
