"""What the framework callbacks share: picking scalars without a host sync, the requests they
act on, the options they pass on to tui_nn.Run, and closing it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui_nn.engine.controls import ACTIONS

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


def honours(world_size: int) -> tuple[str, ...]:
    """The requests a callback acts on: all of them in one process; none under DDP (one
    rank cannot pause, stop or save alone), so those are refused with the reason."""
    return ACTIONS if world_size <= 1 else ()


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

    def close(self, error: BaseException | None = None) -> None:
        """Write Finished (or Failed for `error`) and release the run directory; idempotent."""
        run, self.run = self.run, None
        if run is not None:
            run.__exit__(type(error) if error else None, error,
                         error.__traceback__ if error else None)
