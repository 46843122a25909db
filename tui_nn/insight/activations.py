"""Activation functions and their derivatives on one grid, the seed's activation plot plus
the functions it recommends against vanishing gradients (leaky ReLU, PReLU, GELU).

Derivatives come from autograd, not from formulas, so the curve is what backward really uses
(ReLU's derivative at exactly 0 is 0 in PyTorch, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

PRELU_INIT = 0.25  # nn.PReLU's initial slope; it is learned during training
LEAKY_SLOPE = 0.01  # F.leaky_relu's default negative slope

# name -> (function, formula shown in the legend)
_FUNCTIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], str]] = {
    "sigmoid": (torch.sigmoid, "1/(1+e^-x)"),
    "tanh": (torch.tanh, "tanh x"),
    "relu": (F.relu, "max(0, x)"),
    "leaky_relu": (lambda x: F.leaky_relu(x, LEAKY_SLOPE), f"max({LEAKY_SLOPE}x, x)"),
    "prelu": (lambda x: F.prelu(x, torch.tensor([PRELU_INIT], dtype=x.dtype)),
              f"max({PRELU_INIT}x, x), slope learned"),
    "softplus": (F.softplus, "ln(1+e^x)"),
    "gelu": (F.gelu, "x·Φ(x)"),
}
ACTIVATIONS: tuple[str, ...] = tuple(_FUNCTIONS)


@dataclass(frozen=True)
class ActivationCurve:
    name: str
    formula: str
    x: list[float]
    y: list[float]
    dy: list[float]  # dy/dx at each x, via autograd

    @property
    def max_slope(self) -> float:
        """The largest derivative: 0.25 for sigmoid is why deep sigmoid stacks vanish."""
        return max(self.dy)


def activation_fn(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        return _FUNCTIONS[name][0]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; "
                         f"choose from {', '.join(ACTIVATIONS)}") from None


def activation_curves(names: Iterable[str] = ACTIVATIONS, *, x_min: float = -5.0,
                      x_max: float = 5.0, points: int = 201) -> list[ActivationCurve]:
    """Each function and its derivative on linspace(x_min, x_max, points).

    The default grid is the seed's linspace(-5, 5) with an odd count, so x = 0 is on it.
    201 points cost about 1 ms for all seven functions.
    """
    if points < 2 or not x_max > x_min:
        raise ValueError(f"need points ≥ 2 and x_max > x_min (got {points}, {x_min}, {x_max})")
    grid = torch.linspace(x_min, x_max, points, dtype=torch.float64)  # (P,)
    xs = grid.tolist()
    curves = []
    for name in names:
        fn = activation_fn(name)
        x = grid.clone().requires_grad_(True)
        y = fn(x)  # (P,) elementwise, so d(sum y)/dx_i = f'(x_i)
        (dy,) = torch.autograd.grad(y.sum(), x)
        curves.append(ActivationCurve(name, _FUNCTIONS[name][1], xs, y.detach().tolist(),
                                      dy.tolist()))
    return curves


# Marker letters: a plot must read without colour (pipes, logs, screen readers' text dumps).
MARKERS = {"sigmoid": "s", "tanh": "t", "relu": "r", "leaky_relu": "l", "prelu": "p",
           "softplus": "+", "gelu": "g"}
