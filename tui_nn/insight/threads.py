"""Running tiny models with one intra-op thread.

The lesson models (an 8×32 MLP, 16-unit RNNs) do a handful of small matrix products per step,
which more threads cannot speed up; on a busy machine the extra threads' spin-waiting makes
them an order of magnitude slower instead. Measured on 2 loaded cores: compare_vanishing
57 ms with 1 thread against 5.3 s with 2; RNN + LSTM on 80 steps for 15 epochs 20 s against
285 s.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with n intra-op threads, then restore the previous count (None or 0:
    leave it alone). The setting is process-wide: meant for a view's own short computation,
    not to wrap a training run of a large model."""
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
