"""How a run is steered from outside the training thread: pause, resume, stop, checkpoint now,
scale the lr. Thread-safe flags that the training loop polls between steps (a
threading.Event costs nothing to check), shared by every way of steering a run."""

from __future__ import annotations

import threading
from typing import Any

# One `lr F` request scales the lr by at most this much either way, and so do the requests
# gathered before the next step together: 1e308 would make the next step's arithmetic overflow
# (a RuntimeError of the model, not a divergence to nan). README "control lr" says the range.
LR_FACTOR_MIN, LR_FACTOR_MAX = 1e-6, 1e6
LR_FACTOR_HINT = (f"lr needs a FACTOR from {LR_FACTOR_MIN:g} to {LR_FACTOR_MAX:g}, "
                  "e.g. `lr 0.5` halves it")


def lr_factor(value: Any) -> float | None:
    """`value` as an lr factor in the accepted range, or None (a bool, a string, nan, inf, a
    400-digit integer that no float holds, 0, a negative, or out of range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        factor = float(value)
    except OverflowError:
        return None
    return factor if LR_FACTOR_MIN <= factor <= LR_FACTOR_MAX else None  # nan fails both


class Controls:
    """Mixed into the Trainer; every method is safe to call from any thread."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._running.set()
        self._stop = threading.Event()
        self._checkpoint_requested = threading.Event()
        self._lr_lock = threading.Lock()
        self._lr_factor = 1.0  # pending scale_lr() requests, applied between steps

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop

    def request_checkpoint(self) -> None:
        self._checkpoint_requested.set()

    def scale_lr(self, factor: float) -> None:
        """Multiply the learning rate by ``factor`` before the next step (a schedule keeps its
        shape, scaled). Applied by the training thread, so it is safe from any thread."""
        checked = lr_factor(factor)
        if checked is None:
            raise ValueError(f"{LR_FACTOR_HINT} (got {factor!r})")
        with self._lr_lock:
            pending = lr_factor(self._lr_factor * checked)
            if pending is None:
                raise ValueError(f"{LR_FACTOR_HINT}: with the changes not yet applied it "
                                 f"would be × {self._lr_factor * checked:g}")
            self._lr_factor = pending

    def take_lr_factor(self) -> float:
        """The factor gathered since the last call (1.0 when none); for the training thread."""
        with self._lr_lock:
            factor, self._lr_factor = self._lr_factor, 1.0
        return factor

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()
