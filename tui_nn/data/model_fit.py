"""Make a model and a dataset fit each other before a run starts, or say exactly how.

* A zoo classifier is built for the data: its output layer sized to the dataset's classes and,
  for image models, its first layer to the images' channels (``zoo_input_shape``,
  ``zoo_build_kwargs``).
* Any model's output is checked against the targets (``check_output_fits``): class count,
  binary width, regression width. A misfit is a FitError naming both numbers and the fix.
* A binary model may end in a sigmoid (probabilities: BCELoss, as the seed notes teach) or in
  logits (BCEWithLogitsLoss); which one is read off the probed output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tui_nn.data import tasks
from tui_nn.fmt import format_shape
from tui_nn.modelmode import in_mode

# Backward nodes that only reshape: look through them for the op that made the values.
_VIEW_OPS = ("View", "Reshape", "Squeeze", "Unsqueeze", "Clone", "Flatten", "Expand",
             "Permute", "Transpose", "Select", "Slice", "ToCopy", "Alias")
# Backward nodes of an affine layer: their output is unbounded (logits) whatever its values.
_AFFINE_OPS = ("Addmm", "Mm", "Add", "Linear", "Convolution", "Bmm", "Mv", "Sub", "Mul")


class FitError(Exception):
    """The model's output cannot fit the dataset's targets; the message says how to fix it."""


@dataclass(frozen=True)
class Fit:
    loss_task: str  # what tasks.loss_* take: the task, or "binary-logits"
    note: str  # for the run's first line, e.g. "3 classes: head Linear(320, 3), CrossEntropyLoss"


def zoo_input_shape(spec: Any, ds: Any) -> tuple[int, ...]:
    """The zoo model's per-sample shape with the images' channel count (its own H×W)."""
    want = tuple(spec.input_shape)
    have = tuple(ds.input_shape)
    if getattr(spec, "classes", None) is not None and len(want) == 3 and len(have) == 3:
        return (have[0], *want[1:])
    return want


def zoo_build_kwargs(spec: Any, ds: Any) -> dict[str, int]:
    """spec.build(**kwargs) for this dataset: its class count and image channels."""
    kwargs: dict[str, int] = {}
    if getattr(spec, "classes", None) is None:
        return kwargs
    if ds.task == "classification" and ds.num_classes:
        kwargs["num_classes"] = int(ds.num_classes)
    if len(spec.input_shape) == 3 and len(ds.input_shape) == 3:
        kwargs["in_channels"] = int(ds.input_shape[0])
    return kwargs


def _probe(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, nn.Module | None]:
    """(output with autograd history, the last leaf module that has out_features)."""
    last: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: last.append(mod))
             for m in model.modules()
             if not list(m.children()) and hasattr(m, "out_features")]
    try:
        with in_mode(model, training=False), torch.enable_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return out, (last[-1] if last else None)


def _final_op(out: torch.Tensor) -> str:
    """Name of the op that produced ``out``'s values, looking through reshapes."""
    fn = out.grad_fn
    while fn is not None and type(fn).__name__.startswith(_VIEW_OPS) and fn.next_functions:
        fn = fn.next_functions[0][0]
    return type(fn).__name__ if fn is not None else ""


def ends_in_probabilities(out: torch.Tensor) -> bool:
    """True for a sigmoid output (BCELoss), False for logits (BCEWithLogitsLoss)."""
    op = _final_op(out)
    if op.startswith(("Sigmoid", "Hardsigmoid")):
        return True
    if op.startswith(_AFFINE_OPS):
        return False
    values = out.detach().float()
    return bool(((values >= 0) & (values <= 1)).all())


def _layer(last: nn.Module | None) -> str:
    if isinstance(last, nn.Linear):
        return f"Linear({last.in_features}, {last.out_features})"
    return type(last).__name__ if last is not None else ""


def _fix(net: str, last: nn.Module | None, have: int, want: int, why: str) -> FitError:
    """'Net ends in Linear(64, 10) but <why>: use nn.Linear(64, 3)'."""
    if isinstance(last, nn.Linear) and last.out_features == have:
        return FitError(f"{net} ends in {_layer(last)} but {why}: use "
                        f"nn.Linear({last.in_features}, {want})")
    return FitError(f"{net} outputs {have} values per sample but {why}: make its last layer "
                    f"output {want}")


def check_output_fits(model: nn.Module, x: torch.Tensor, y: torch.Tensor, ds: Any) -> Fit:
    """Probe the model on a few samples x (targets y) and check its output against the task."""
    out, last = _probe(model, x)
    net, name, task = type(model).__name__, ds.name, ds.task
    if not isinstance(out, torch.Tensor):
        raise FitError(f"{net} returns a {type(out).__name__}, not a tensor: return the output "
                       "tensor from forward()")
    shape = format_shape(tuple(out.shape))
    if task == "classification":
        n = int(ds.num_classes or 0)
        if out.dim() != 2:
            raise FitError(f"{net} outputs {shape} but a classifier must output (batch, classes)"
                           f" = (batch, {n}) for {name}: flatten before its last nn.Linear")
        if n and out.shape[1] != n:  # n = 0: a dataset that does not say (hand-built ones)
            raise _fix(net, last, out.shape[1], n, f"{name} has {n} classes")
        head = f"head {_layer(last)}, " if isinstance(last, nn.Linear) else ""
        return Fit(task, f"{out.shape[1]} classes: {head}{tasks.LOSS_NAMES[task]}")
    if task in ("binary", "regression"):
        width = int(y.shape[1]) if y.dim() == 2 else 1
        what = (f"{name} is binary (one output per sample, P(class 1))" if task == "binary"
                else f"{name} has {width} regression target{'s' if width > 1 else ''} per sample")
        if out.dim() != 2:
            raise FitError(f"{net} outputs {shape} but {what}: return a (batch, {width}) tensor, "
                           f"e.g. out.view(-1, {width})")
        if out.shape[1] != width:
            raise _fix(net, last, out.shape[1], width, what)
        if task == "regression":
            return Fit(task, f"regression: {tasks.LOSS_NAMES[task]}")
        loss_task = "binary" if ends_in_probabilities(out) else "binary-logits"
        ends = "a sigmoid" if loss_task == "binary" else "logits"
        return Fit(loss_task, f"binary, model ends in {ends}: {tasks.LOSS_NAMES[loss_task]}")
    return Fit(task, f"{task}: {tasks.LOSS_NAMES.get(task, '')}")
