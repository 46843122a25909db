"""What the framework callbacks share: picking scalars without a host sync, and applying an lr
change asked for from outside to every optimizer and schedule."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.run import Run


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


class RunOptions:
    """What both callbacks pass on to the tui_nn.Run they open (see tui_nn/run.py)."""

    def __init__(self, run_dir: str | Path | None = None, *, model: str | None = None,
                 dataset: str = "-", metric: str | None = None, mode: str | None = None,
                 config: dict[str, Any] | None = None, runs_root: str | Path = "runs",
                 report_interval_s: float = 1.0) -> None:
        self.run_dir, self.model, self.dataset = run_dir, model, dataset
        self.metric, self.mode, self.config = metric, mode, dict(config or {})
        self.runs_root, self.report_interval_s = runs_root, report_interval_s
        self.run: Run | None = None
