"""Live fit for 1-D models (curve, linear, logistic): the data as a scatter and the model's
current prediction as a line, what the seed redraws every 5 steps with plt.cla().

Call it from the thread that trains (between steps): it runs the model, and a forward pass
racing an optimizer step in another thread would read half-updated weights. One call costs a
forward pass over ``points`` inputs, well under a millisecond for the seed's models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from tui_nn.modelmode import in_mode


@dataclass(frozen=True)
class FitSnapshot:
    """What the fit view draws: points, then the line through the model's predictions."""

    task: str  # "regression" (line = prediction) or "binary" (line = P(class 1))
    x: list[float]  # data, at most max_scatter points (evenly subsampled)
    y: list[float]
    line_x: list[float]  # sorted grid spanning the data plus a margin
    line_y: list[float]
    loss: float | None  # the model's loss on all the data points shown (MSE or BCE)
    # binary only: where the predicted probability crosses 0.5 (None if it never does
    # on the grid), the seed's "between 2 and 3 hours".
    boundary: float | None = None


def supports_fit(dataset: object) -> bool:
    """A fit line needs one input feature and one output: curve, line, hours."""
    return (getattr(dataset, "input_shape", None) == (1,)
            and getattr(dataset, "task", None) in ("regression", "binary")
            and getattr(dataset, "train_y", None) is not None
            and tuple(dataset.train_y.shape[1:]) in ((), (1,)))


def _subsample(n: int, limit: int) -> torch.Tensor:
    if n <= limit:
        return torch.arange(n)
    return torch.linspace(0, n - 1, limit).round().long()  # (limit,) evenly spread


def fit_snapshot(model: nn.Module, dataset: object, *, split: str = "train", points: int = 100,
                 margin: float = 0.1, max_scatter: int = 400,
                 x_range: tuple[float, float] | None = None,
                 logits: bool = False) -> FitSnapshot:
    """The data of one split and the model's prediction on a grid of ``points`` x values.
    ``logits``: a binary model without a final sigmoid; its outputs are turned into P(class 1).

    The grid spans the data's x range widened by ``margin`` of its width on each side (for
    the linear model's x = 1..3 that shows the extrapolation toward x = 4), or ``x_range``.
    """
    if not supports_fit(dataset):
        raise ValueError(f"the fit view needs a dataset with one input and one output "
                         f"(curve, line, hours); {getattr(dataset, 'name', dataset)!r} has "
                         f"input shape {getattr(dataset, 'input_shape', '?')}")
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    xs = getattr(dataset, f"{split}_x").reshape(-1).float()  # (N,)
    ys = getattr(dataset, f"{split}_y").reshape(-1).float()  # (N,)
    task = dataset.task
    if x_range is None:
        lo, hi = float(xs.min()), float(xs.max())
        pad = (hi - lo) * margin if hi > lo else 1.0
        lo, hi = lo - pad, hi + pad
    else:
        lo, hi = x_range
    grid = torch.linspace(lo, hi, max(points, 2))  # (P,)

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    with in_mode(model, training=False), torch.inference_mode():
        both = torch.cat([grid, xs]).to(device, dtype).unsqueeze(1)  # (P + N, 1) one forward
        out = model(both).reshape(-1).float().cpu()  # (P + N,)
    if logits and task == "binary":
        out = torch.sigmoid(out)  # (P + N,) P(class 1)
    line_y, pred = out[:grid.numel()], out[grid.numel():]
    if task == "binary":
        p = pred.clamp(1e-7, 1 - 1e-7)
        loss = float(-(ys * p.log() + (1 - ys) * (1 - p).log()).mean())
    else:
        loss = float(((pred - ys) ** 2).mean())
    keep = _subsample(xs.numel(), max_scatter)
    return FitSnapshot(task=task, x=xs[keep].tolist(), y=ys[keep].tolist(),
                       line_x=grid.tolist(), line_y=line_y.tolist(),
                       loss=loss if math.isfinite(loss) else None,
                       boundary=_crossing(grid, line_y, 0.5) if task == "binary" else None)


def _crossing(x: torch.Tensor, y: torch.Tensor, level: float) -> float | None:
    """First x where y crosses level, linearly interpolated between grid points."""
    above = (y >= level).to(torch.int8)  # (P,)
    flips = (above[1:] != above[:-1]).nonzero()
    if flips.numel() == 0:
        return None
    i = int(flips[0])
    y0, y1 = float(y[i]), float(y[i + 1])
    t = (level - y0) / (y1 - y0) if y1 != y0 else 0.0
    return float(x[i]) + t * float(x[i + 1] - x[i])
