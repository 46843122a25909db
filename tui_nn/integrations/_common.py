"""What the framework callbacks share: picking scalars without a host sync, and applying an lr
change asked for from outside to every optimizer and schedule."""

from __future__ import annotations

import math
from typing import Any, Iterable


def is_scalar(value: Any) -> bool:
    """A float, an int or a one-element tensor (kept as it is: tui_nn.Run reads tensors back
    once per record, never per step)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    numel = getattr(value, "numel", None)
    return callable(numel) and numel() == 1


def as_float(value: Any) -> float:
    try:
        return float(value)  # a tensor: one read-back, only at an epoch's end
    except (TypeError, ValueError, RuntimeError):
        return math.nan


def scale_lr(run: Any, optimizers: Iterable[Any], schedulers: Iterable[Any] = ()) -> float:
    """Apply the factor asked for with `l` / `tui-nn control RUN lr F` to all the optimizers,
    and to the schedules' base lrs so that the next scheduler.step() keeps the change (the
    schedule keeps its shape, scaled, as in tui-nn's Trainer). Returns the factor."""
    optimizers = [o for o in optimizers if o is not None]
    if not optimizers:
        return 1.0
    factor = run.apply_lr(optimizers[0])  # records the change once
    if factor == 1.0:
        return factor
    for optimizer in optimizers[1:]:
        for group in optimizer.param_groups:
            group["lr"] *= factor
    for scheduler in schedulers:
        if scheduler is not None and hasattr(scheduler, "base_lrs"):
            scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
    return factor
