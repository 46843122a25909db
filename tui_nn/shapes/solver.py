"""The input-size solver: which square input sizes make a model run and its flatten checks pass.

LeNet's Linear(400) only works for 32×32 to 35×35 inputs; the basic CNN's Linear(320) for
28×28 to 31×31. Models are arbitrary Python, so rather than invert their arithmetic we
probe: trace on the meta device (no weights, no activations, about a millisecond per probe
for the zoo models) at every size in a range, nearest to the size asked for first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from tui_nn.shapes.records import Shape, SolverResult
from tui_nn.shapes.trace import make_inputs, trace


def probe(model: nn.Module, shapes: list[Shape], dtypes: list[torch.dtype]) -> bool:
    """Does the forward run and does every flatten check pass for these (batched) shapes?"""
    result = trace(model, make_inputs(shapes, dtypes), mult_adds=False, formulas=False)
    return result.diagnosis is None and all(c.ok for c in result.checks)


def solve_input_size(model: nn.Module, shapes: list[Shape], dtypes: list[torch.dtype], *,
                     low: int = 1, high: int | None = None, budget_s: float = 5.0,
                     give_up_early: bool = False) -> SolverResult | None:
    """Vary the spatial dims of the first input (batched shape N×C×…) together.

    Sizes are tried nearest to the given one first, so a search cut short by `budget_s`
    still knows the nearest working size within the distance it covered. With
    `give_up_early`, the first probe's time predicts the whole scan, and a scan that would
    not fit in the budget stops after that probe (`complete` False): for big models the
    answer is not worth the wait unless something failed.

    Returns None when the first input has no spatial dims (N×features, token ids) or is not
    floating point: there is no image size to solve for.
    """
    first = shapes[0]
    if len(first) < 3 or not dtypes[0].is_floating_point:
        return None
    sample = tuple(first[1:])
    start = sample[-1]
    high = high or max(64, 2 * start)
    n_spatial = len(sample) - 1
    order = sorted(range(low, high + 1), key=lambda s: (abs(s - start), s))
    working: list[int] = []
    deadline = time.perf_counter() + budget_s
    complete = True
    started = time.perf_counter()
    for i, size in enumerate(order):
        if time.perf_counter() > deadline:
            complete = False
            break
        candidate = (first[0], sample[0], *([size] * n_spatial))
        if probe(model, [candidate, *shapes[1:]], dtypes):
            working.append(size)
        if i == 0 and give_up_early and (time.perf_counter() - started) * len(order) > budget_s:
            complete = False
            break
    return SolverResult(sample, sorted(working), (low, high), complete)


@dataclass(frozen=True)
class SizeChoice:
    """An image size picked for a model whose input size nobody gave."""

    size: int | None  # `prefer` when it passes, else the smallest size that does; None: none
    smallest: int | None  # the smallest passing size found
    high: int  # sizes 1..high were the range searched
    complete: bool  # False when the budget ran out before the search was done


def choose_size(model: nn.Module, shape_at: Callable[[int], Shape], dtype: torch.dtype, *,
                prefer: int, high: int = 256, budget_s: float = 3.0) -> SizeChoice:
    """The smallest square size that passes, and `prefer` (a usual size, e.g. 28 for one
    channel) when it passes too: a net ending in global pooling fits 1×1, which is no
    input anyone means. `shape_at(size)` is the batched input shape at that size."""
    prefer_ok = probe(model, [shape_at(prefer)], [dtype])
    deadline = time.perf_counter() + budget_s  # after the first probe, which warms torch up
    top = prefer if prefer_ok else high
    smallest: int | None = None
    complete = True
    for size in range(1, top + 1):
        if size == prefer and prefer_ok:
            smallest = size
            break
        if time.perf_counter() > deadline:
            complete = False
            break
        if probe(model, [shape_at(size)], [dtype]):
            smallest = size
            break
    return SizeChoice(prefer if prefer_ok else smallest, smallest, high, complete)
