"""How a run is steered from outside the training thread: pause, resume, stop, checkpoint now,
scale the lr. Thread-safe flags that the training loop polls between steps (a
threading.Event costs nothing to check), shared by every way of steering a run."""

from __future__ import annotations

import math
import threading


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
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"lr factor must be a number > 0 (got {factor})")
        with self._lr_lock:
            self._lr_factor *= factor

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
