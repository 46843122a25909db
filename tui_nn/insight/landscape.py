"""The seed's first lesson: the MSE of y = w·x (+ b) on x = 1, 2, 3 / y = 2, 4, 6 as a function
of the weights, and gradient descent walking down it, done by hand as the notes do.

Plain Python floats, no torch: three data points need no tensors, and the hand-written
gradients are the point of the lesson (d/dw (w·x - y)² = 2·x·(w·x - y)).

Methods (an epoch is one pass over the three points, the seed's ``for epoch in range(100)``):
- "gd":        one step per epoch with the mean gradient over all points (the seed's GD).
- "sgd":       one step per point, three per epoch (the seed's SGD; shuffled unless
               shuffle=False, which visits x = 1, 2, 3 in order exactly like the notes).
- "minibatch": one step per batch of 2 points, the last batch of an epoch holding the one left.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Sequence

SEED_X: tuple[float, ...] = (1.0, 2.0, 3.0)
SEED_Y: tuple[float, ...] = (2.0, 4.0, 6.0)
METHODS = ("gd", "sgd", "minibatch")
METHOD_LABELS = {"gd": "gradient descent", "sgd": "SGD (one point)",
                 "minibatch": "mini-batch SGD (2 points)"}


def mse(w: float, b: float = 0.0, xs: Sequence[float] = SEED_X,
        ys: Sequence[float] = SEED_Y) -> float:
    """The seed's cost(): mean of (w·x + b - y)² over the points."""
    return sum((w * x + b - y) ** 2 for x, y in zip(xs, ys)) / len(xs)


def _grid(start: float, stop: float, step: float) -> list[float]:
    n = int(round((stop - start) / step)) + 1
    return [round(start + i * step, 10) for i in range(n)]


def default_w_grid() -> list[float]:
    """np.arange(0.0, 4.1, 0.1) from the notes: w = 0.0, 0.1, ..., 4.0."""
    return _grid(0.0, 4.0, 0.1)


def default_b_grid() -> list[float]:
    """b = -2.0 ... 2.0 in steps of 0.1 (the notes' homework uses 0, 0.5, 1, 1.5)."""
    return _grid(-2.0, 2.0, 0.1)


@dataclass(frozen=True)
class LossCurve:
    w: list[float]
    loss: list[float]


@dataclass(frozen=True)
class LossGrid:
    """values[i][j] is the MSE at w = w[j], b = b[i] (rows are b, as a heat map draws them)."""

    w: list[float]
    b: list[float]
    values: list[list[float]]


def mse_curve(w_grid: Iterable[float] | None = None, *, xs: Sequence[float] = SEED_X,
              ys: Sequence[float] = SEED_Y) -> LossCurve:
    """MSE of y = w·x for each w (the seed's first plot: a parabola with its bottom at w = 2)."""
    ws = list(w_grid) if w_grid is not None else default_w_grid()
    return LossCurve(ws, [mse(w, 0.0, xs, ys) for w in ws])


def mse_grid(w_grid: Iterable[float] | None = None, b_grid: Iterable[float] | None = None, *,
             xs: Sequence[float] = SEED_X, ys: Sequence[float] = SEED_Y) -> LossGrid:
    """MSE of y = w·x + b on a w×b grid (the homework's surface, drawn as a heat map).

    The valley is long and narrow (w and b trade off along w·mean(x) + b = mean(y)), which is
    why plain GD crawls along it once it has dropped in.
    """
    ws = list(w_grid) if w_grid is not None else default_w_grid()
    bs = list(b_grid) if b_grid is not None else default_b_grid()
    return LossGrid(ws, bs, [[mse(w, b, xs, ys) for w in ws] for b in bs])


@dataclass(frozen=True)
class DescentPath:
    """Where the weights went, one entry per update, the start included (len = updates + 1).

    loss[i] is the full-data MSE at (w[i], b[i]) — the height on the landscape, comparable
    across methods; batch_loss[i] (i ≥ 1) is the loss of the points that step used, which is
    what the seed prints for SGD (and why its printed loss jumps around).
    """

    method: str
    lr: float
    fit_bias: bool
    w: list[float]
    b: list[float]
    loss: list[float]
    batch_loss: list[float]
    epoch: list[int]  # the epoch each point was reached in (the start is epoch 0)
    updates_per_epoch: int

    @property
    def final(self) -> tuple[float, float, float]:
        return self.w[-1], self.b[-1], self.loss[-1]

    def per_epoch(self) -> "DescentPath":
        """Only the points at epoch ends: same length for every method, for animating them
        side by side (SGD makes three updates per epoch, GD one)."""
        keep = [0] + [i for i in range(1, len(self.w))
                      if i == len(self.w) - 1 or self.epoch[i + 1] != self.epoch[i]]
        pick = lambda xs: [xs[i] for i in keep]  # noqa: E731
        return DescentPath(self.method, self.lr, self.fit_bias, pick(self.w), pick(self.b),
                           pick(self.loss), pick(self.batch_loss), pick(self.epoch), 1)


def _batches(method: str, n: int, rng: random.Random, shuffle: bool,
             batch_size: int) -> list[list[int]]:
    order = list(range(n))
    if method == "gd":
        return [order]
    if shuffle:
        rng.shuffle(order)
    size = 1 if method == "sgd" else batch_size
    return [order[i:i + size] for i in range(0, n, size)]


def descent_path(method: str = "gd", lr: float = 0.01, epochs: int = 100, *, seed: int = 0,
                 w0: float = 1.0, b0: float = 0.0, fit_bias: bool = False, shuffle: bool = True,
                 batch_size: int = 2, xs: Sequence[float] = SEED_X,
                 ys: Sequence[float] = SEED_Y) -> DescentPath:
    """Run one method by hand from w = w0 (the seed starts at 1.0), b = b0.

    fit_bias=False is the seed's model y = w·x (b stays at b0); True also learns b, for the
    w×b heat map. seed fixes the shuffling of SGD and mini-batch.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if epochs < 0 or not lr > 0:
        raise ValueError(f"need epochs ≥ 0 and lr > 0 (got {epochs}, {lr})")
    rng = random.Random(seed)
    w, b = float(w0), float(b0)
    ws, bs, losses, batch_losses, ep = [w], [b], [mse(w, b, xs, ys)], [mse(w, b, xs, ys)], [0]
    per_epoch = 0
    for epoch in range(1, epochs + 1):
        batches = _batches(method, len(xs), rng, shuffle, batch_size)
        per_epoch = len(batches)
        for batch in batches:
            k = len(batch)
            errors = [(w * xs[i] + b - ys[i]) for i in batch]  # residuals before the step
            grad_w = sum(2 * xs[i] * e for i, e in zip(batch, errors)) / k
            grad_b = sum(2 * e for e in errors) / k
            batch_losses.append(sum(e * e for e in errors) / k)
            w -= lr * grad_w
            if fit_bias:
                b -= lr * grad_b
            ws.append(w)
            bs.append(b)
            losses.append(mse(w, b, xs, ys))
            ep.append(epoch)
    return DescentPath(method, lr, fit_bias, ws, bs, losses, batch_losses, ep,
                       per_epoch or len(_batches(method, len(xs), rng, False, batch_size)))


def descent_paths(methods: Iterable[str] = METHODS, lr: float = 0.01, epochs: int = 100,
                  **options: object) -> dict[str, DescentPath]:
    """descent_path for each method with the same settings (the landscape view draws all)."""
    return {m: descent_path(m, lr, epochs, **options) for m in methods}  # type: ignore[arg-type]
