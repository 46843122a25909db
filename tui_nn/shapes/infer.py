"""Guess a model's input from its first layer when nobody gave one (a user's file, a factory).

A Conv2d says how many channels it takes, a Linear how many features, an RNN how many
features per step, an Embedding that it takes token ids. No attribute says the image size:
the input-size solver picks the smallest one that passes (or a usual one, 28 for one channel,
when it passes too), and the guess says so in a note rather than pretending it was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from tui_nn.fmt import format_shape
from tui_nn.shapes.arithmetic import rank_suffix, spatial_rank
from tui_nn.shapes.checks import plural
from tui_nn.shapes.records import Shape
from tui_nn.shapes.solver import choose_size, probe

SEQUENCE_STEPS = 8  # token ids / time steps in a guessed sequence input
USUAL_SIZES = {1: 28, 3: 32}  # channels -> a usual image size (MNIST, CIFAR)
CANDIDATES = 3  # layers (in definition order) tried as the first one called


@dataclass(frozen=True)
class GuessedInput:
    shape: Shape  # one sample, no batch: (1, 28, 28)
    dtype: torch.dtype
    note: str  # 'assumed 1×28×28: first layer takes 1 channel; smallest size that fits: 28'
    fits: bool  # the model runs and its flatten checks pass at this input


def first_layers(model: nn.Module, count: int = CANDIDATES) -> list[nn.Module]:
    """Leaf modules with weights of their own, in definition order (usually call order)."""
    out = []
    for module in model.modules():
        if next(iter(module.children()), None) is None and \
                next(iter(module.parameters(recurse=False)), None) is not None:
            out.append(module)
            if len(out) == count:
                break
    return out


def guess_input(model: nn.Module, budget_s: float = 3.0) -> GuessedInput | None:
    """The input the first layer asks for; None when no layer with weights says anything.

    Layers are defined in `__init__` in any order: when the first defined one's guess does not
    run, the next ones are tried, and the first guess is kept if none fits (its diagnosis then
    says what is wrong)."""
    first: GuessedInput | None = None
    for layer in first_layers(model):
        guess = _guess_for(model, layer, budget_s)
        if guess is None:
            continue
        if guess.fits:
            return guess
        first = first or guess
    return first


def _guess_for(model: nn.Module, layer: nn.Module, budget_s: float) -> GuessedInput | None:
    m: Any = layer
    name = type(layer).__name__
    n = spatial_rank(layer)
    if n is not None and hasattr(m, "in_channels"):
        return _image(model, m.in_channels, n, f"first layer ({name}) takes", budget_s)
    if isinstance(layer, nn.modules.batchnorm._BatchNorm) and rank_suffix(layer) in (2, 3):
        return _image(model, m.num_features, rank_suffix(layer) or 2,
                      f"first layer ({name}) takes", budget_s)
    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):
        return _checked(model, (SEQUENCE_STEPS,), torch.int64,
                        f"{SEQUENCE_STEPS} int64 token ids: first layer is an {name}")
    if isinstance(layer, nn.RNNBase):
        shape = (SEQUENCE_STEPS, m.input_size)
        return _checked(model, shape, torch.float32,
                        f"{format_shape(shape)}: first layer ({name}) takes {m.input_size} "
                        f"features per step; {SEQUENCE_STEPS} steps")
    if isinstance(layer, (nn.Linear, nn.modules.batchnorm._BatchNorm)):  # BatchNorm1d: N×C
        n = m.in_features if isinstance(layer, nn.Linear) else m.num_features
        return _checked(model, (n,), torch.float32,
                        f"{n}: first layer ({name}) takes {plural(n, 'feature')}")
    if isinstance(layer, nn.LayerNorm):
        shape = tuple(m.normalized_shape)
        return _checked(model, shape, torch.float32,
                        f"{format_shape(shape)}: first layer ({name}) normalises over it")
    return None


def _checked(model: nn.Module, shape: Shape, dtype: torch.dtype, what: str) -> GuessedInput:
    return GuessedInput(shape, dtype, f"assumed {what}", probe(model, [(1, *shape)], [dtype]))


def _image(model: nn.Module, channels: int, n: int, what: str, budget_s: float
           ) -> GuessedInput:
    """C × S × … × S with S from the solver: the smallest that passes, or a usual size."""
    prefer = USUAL_SIZES.get(channels, 32) if n == 2 else 32
    shape_at: Callable[[int], Shape] = lambda s: (1, channels, *([s] * n))  # noqa: E731
    choice = choose_size(model, shape_at, torch.float32, prefer=prefer, budget_s=budget_s)
    size = choice.size or prefer
    shape = shape_at(size)[1:]
    took = f"{what} {plural(channels, 'channel')}"
    if choice.size is None:
        searched = f"1–{choice.high}" if choice.complete else "the time allowed"
        found = f"no square size in {searched} fits"
    elif choice.smallest == size:
        found = f"smallest size that fits: {size}"
    elif choice.smallest is None:  # out of time below the usual size
        found = f"{size} fits (smaller sizes not all tried)"
    else:
        found = f"smallest size that fits: {choice.smallest}; {size} is a usual one"
    return GuessedInput(shape, torch.float32,
                        f"assumed {format_shape(shape)}: {took}; {found}", choice.size is not None)


def no_input_message(name: str, model: nn.Module) -> str:
    """Exit-2 message when no layer tells the input: the example names no channel count the
    model might contradict."""
    layers = first_layers(model, 1)
    which = f"its first layer ({type(layers[0]).__name__}) does not say what it takes" if layers \
        else "it has no layer with weights to tell what it takes"
    return (f"{name} has no default input shape and {which}: give one, e.g. --input 1x28x28 "
            f"(channels × height × width, batch optional) or --input 10 (10 features)")
