"""How a run is steered from outside the training thread: pause, resume, stop, checkpoint now,
scale the lr. Thread-safe flags that the training loop polls between steps (a
threading.Event costs nothing to check), shared by every way of steering a run."""

from __future__ import annotations

import threading
from typing import Any, Iterable

ACTIONS = ("pause", "resume", "checkpoint", "lr", "stop")  # what a request may ask

# A parameter group's lr and what the schedulers derive it from: OneCycleLR computes every lr
# from initial_lr, max_lr and min_lr; every scheduler keeps initial_lr to rebuild base_lrs.
LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
# A scheduler's own lrs: the closed forms of LambdaLR, StepLR, cosine (base_lrs), CyclicLR
# (max_lrs), what get_last_lr() answers (_last_lr); CosineAnnealing*'s floor (eta_min).
_SCHEDULE_LISTS = ("base_lrs", "max_lrs", "_last_lr")

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

    def refusal(self, action: str) -> str | None:
        """Why this run cannot act on the request now; None when it can (the Trainer acts
        on every request; tui_nn.Run only on those its loop polls)."""
        return None

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()


def scale_lrs(optimizers: Iterable[Any], schedulers: Iterable[Any], factor: float) -> None:
    """Multiply the lr by factor so that the change outlives the next scheduler.step(): the
    schedule keeps its shape, scaled. The one lr scaling of the Trainer, tui_nn.Run and the
    Lightning / Hugging Face callbacks; duck-typed (no torch import)."""
    for optimizer in optimizers:
        if optimizer is None:
            continue
        for group in optimizer.param_groups:
            for key in LR_KEYS:
                if key in group:
                    group[key] = _scaled(group[key], factor)
    for scheduler in schedulers:
        if scheduler is None:
            continue
        for name in _SCHEDULE_LISTS:
            values = getattr(scheduler, name, None)
            if isinstance(values, (list, tuple)):
                setattr(scheduler, name, [_scaled(v, factor) for v in values])
        if isinstance(getattr(scheduler, "eta_min", None), (int, float)):
            scheduler.eta_min *= factor
        # SequentialLR, ChainedScheduler: the schedulers inside (all on the same optimizer).
        scale_lrs((), getattr(scheduler, "_schedulers", ()), factor)


def _scaled(value: Any, factor: float) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) or callable(getattr(value, "mul_", None)):
        return value * factor  # a tensor lr too: a new one (_last_lr may hold the same)
    return value  # something else (None): left as it is
