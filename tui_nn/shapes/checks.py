"""Flatten checks and diagnoses: what a layer expected, what it got, and what to change.

Problems are found *before* a layer runs where we can (the layer's attributes say what it
expects), so the message does not depend on which device's kernel would have complained
first; errors we could not foresee are read from the exception text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, cast

import torch
from torch import nn

from tui_nn.fmt import format_shape
from tui_nn.shapes.arithmetic import bind_call, function_formulas, module_formulas, spatial_rank
from tui_nn.shapes.parse import format_factors
from tui_nn.shapes.records import Diagnosis, FlattenCheck, Shape
from tui_nn.textsafe import first_line


# --- flatten provenance ----------------------------------------------------------------------

@dataclass
class FlattenOrigin:
    """Where a flattened tensor came from; follows the tensor through shape-keeping ops."""

    tensor: torch.Tensor  # held so the id() stays valid while the trace runs
    source_shape: Shape  # before the flatten, batch included: (1, 20, 4, 4)
    factors: Shape | None  # the per-sample dims merged: (20, 4, 4); None when rows mix samples
    op: str  # 'Tensor.view'
    path: str  # the row (or the module, e.g. nn.Flatten) that flattened


def classify_flatten(source: Shape, result: Shape) -> tuple[bool, Shape | None]:
    """Is `source -> result` a flatten feeding features to a Linear? Returns (is_flatten, factors).

    A flatten merges at least two trailing dims into the last one: (B, 20, 4, 4) -> (B, 320)
    gives factors (20, 4, 4). (B, T, C) -> (B·T, C) merges leading dims only: not a flatten.
    When no trailing dims multiply to the new last dim, rows cut across samples
    (view(-1, 320) of a (1, 20, 8, 8) tensor): a flatten with factors None.
    """
    if len(result) == 0 or len(source) < 2 or len(result) >= len(source):
        return False, None
    last = result[-1]
    for k in range(1, len(source)):
        if math.prod(source[k:]) == last:
            if k == len(source) - 1:
                return False, None  # the last dim is kept: leading dims were merged
            return True, tuple(source[k:])
    return True, None


def linear_check(path: str, linear: nn.Linear, got: int, origin: FlattenOrigin) -> FlattenCheck:
    src = origin.source_shape
    if origin.factors is None:
        per_sample = math.prod(src[1:])
        batch_out = math.prod(src) // got if got else 0
        problem = (f"rows of {got} mix samples: each sample has {format_factors(src[1:])} = "
                   f"{per_sample} values, so the batch of {src[0]} became {batch_out}")
        fix = (f"flatten per sample with x.view(x.size(0), -1) and use "
               f"nn.Linear({per_sample}, {linear.out_features})")
        text = (f"Linear({linear.in_features}) ← {format_factors(src[1:])} = {per_sample} per "
                f"sample, cut into rows of {got} ✗")
        return FlattenCheck(path, linear.in_features, got, None, src, origin.op, origin.path,
                            False, text, problem, fix)
    ok = got == linear.in_features
    text = f"Linear({linear.in_features}) ← {format_factors(origin.factors)} = {got} "
    text += "✓" if ok else f"✗ expects {linear.in_features}"
    problem = "" if ok else f"expects {linear.in_features} features, gets {got}"
    fix = "" if ok else f"use nn.Linear({got}, {linear.out_features})"
    return FlattenCheck(path, linear.in_features, got, origin.factors, src, origin.op,
                        origin.path, ok, text, problem, fix)


# --- validation before a layer runs ----------------------------------------------------------

def _first_tensor(args: tuple, kwargs: dict) -> torch.Tensor | None:
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ctor(module: nn.Module, first: int) -> str:
    """nn.Conv2d(1, 6, kernel_size=5) with `first` as the new first argument."""
    m: Any = module
    name = type(module).__name__
    k = m.kernel_size
    k_text = k[0] if isinstance(k, tuple) and len(set(k)) == 1 else k
    return f"nn.{name}({first}, {m.out_channels}, kernel_size={k_text})"


def validate_module(module: nn.Module, args: tuple, kwargs: dict,
                    lookup_origin: Callable[[torch.Tensor], FlattenOrigin | None],
                    is_model_input: Callable[[torch.Tensor], bool]) -> Diagnosis | None:
    """What `module` will fail on with these arguments, or None if it looks fine."""
    x = _first_tensor(args, kwargs)
    if x is None or not runs_torch_forward(module):
        return None
    if isinstance(module, nn.Linear):
        return _check_linear(module, x, lookup_origin)
    if spatial_rank(module) is not None:
        return _check_spatial(module, x, is_model_input)
    for kind, check in _CHECKS:
        if isinstance(module, kind):
            return check(module, x)
    return None


def runs_torch_forward(module: nn.Module) -> bool:
    """Does the module run torch's own forward? A subclass that overrides it (torchvision's
    LayerNorm2d permutes to channels-last first) may accept what the attributes suggest it
    refuses, so it is judged by what it does, not by its attributes."""
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn."):
            return type(module).forward is cls.forward
    return False


def _diagnosis(name: str, kind: str, message: str, shape: Shape, expected: str,
               fixes: list[str], solvable: bool = False) -> Diagnosis:
    return Diagnosis("", name, kind, message, got=[shape], expected=expected, fixes=fixes,
                     solvable=solvable)


OriginLookup = Callable[[torch.Tensor], "FlattenOrigin | None"]


def _check_linear(m: nn.Linear, x: torch.Tensor, lookup_origin: OriginLookup) -> Diagnosis | None:
    shape = tuple(x.shape)
    if x.dim() == 0 or shape[-1] == m.in_features:
        return None
    name, got = type(m).__name__, shape[-1]
    origin = lookup_origin(x)
    if origin is None and _needs_flatten(m, shape):
        return _missing_flatten(m, shape)
    if origin is not None and origin.factors is not None:
        got_text = f"{format_factors(origin.factors)} = {got}"  # the answer to 'why 320?'
    else:
        got_text = f"{got} (input {format_shape(shape)})"
    # Fed by a flatten, the features depend on the input size: the solver may find one.
    return _diagnosis(name, "linear_features",
                      f"{name} expects {m.in_features} features but gets {got_text}", shape,
                      f"(*, {m.in_features})", [f"use nn.Linear({got}, {m.out_features})"],
                      solvable=origin is not None)


def _needs_flatten(m: nn.Linear, shape: Shape) -> bool:
    """A Linear works on the last dim only. Given N×C×H×W (or N×T×F whose per-sample values
    are exactly its in_features), the flatten was forgotten; a transformer's N×T×C with
    the wrong C is a wrong Linear, not a missing flatten."""
    per_sample = math.prod(shape[1:])
    return len(shape) >= 4 or (len(shape) == 3 and per_sample == m.in_features)


_THE_LAYER = "the Linear"  # named by `name_the_layer` once the tracer knows its path


def name_the_layer(diagnosis: Diagnosis) -> None:
    """'before the Linear' -> 'before fc': the checks run before the path is known."""
    if diagnosis.kind == "flatten" and diagnosis.path:
        diagnosis.fixes = [f.replace(f"before {_THE_LAYER}", f"before {diagnosis.path}")
                           for f in diagnosis.fixes]


def _missing_flatten(m: nn.Linear, shape: Shape) -> Diagnosis:
    name, per_sample = type(m).__name__, math.prod(shape[1:])
    flatten = f"add nn.Flatten() (or x.flatten(1)) before {_THE_LAYER}"
    fixes = [flatten if per_sample == m.in_features else
             f"{flatten} and use nn.Linear({per_sample}, {m.out_features})"]
    return _diagnosis(name, "flatten",
                      f"{name} expects {m.in_features} features but gets "
                      f"{len(shape)}D input {format_shape(shape)}: a Linear works on the last "
                      f"dim ({shape[-1]}); flattened, each sample has "
                      f"{format_factors(shape[1:])} = {per_sample}", shape,
                      f"(N, {m.in_features})", fixes)


def _check_spatial(module: nn.Module, x: torch.Tensor,
                   is_model_input: Callable[[torch.Tensor], bool]) -> Diagnosis | None:
    """Conv / pool / pad layers: rank, channels, and whether the input is big enough."""
    n = spatial_rank(module) or 0
    name, shape, m = type(module).__name__, tuple(x.shape), cast(Any, module)
    names = "×".join(("L",) if n == 1 else ("D", "H", "W")[3 - n:])
    channels_in = getattr(m, "in_channels", None)
    if x.dim() not in (n + 1, n + 2):
        fixes = [f"reshape to N×C×{names} before it"]
        if is_model_input(x) and x.dim() == n and channels_in is not None:
            fixes = [f"feed {channels_in}×{format_shape(shape)} input (channels first)"]
        return _diagnosis(name, "rank",
                          f"{name} expects a {n + 2}D input N×C×{names} (or {n + 1}D without the "
                          f"batch) but gets {x.dim()}D {format_shape(shape)}", shape,
                          f"N×C×{names}", fixes)
    if isinstance(module, nn.modules.conv._ConvNd) and shape[-n - 1] != channels_in:
        channels = shape[-n - 1]
        input_fix = None
        if is_model_input(x) and shape[-1] == channels_in:
            # 28×28×1 is an image with its channels last (PIL, NumPy, TensorFlow): move them.
            input_fix = _channels_first(shape, n)
            fixes = [f"did you mean {_typed(input_fix, n)}? (channels first: C×{names}; this input "
                     f"has its {plural(channels_in, 'channel')} last)"]
        elif is_model_input(x):
            fixes = [f"feed {channels_in}×{format_shape(shape[-n:])} input",
                     f"use {_ctor(module, channels)}"]
        else:
            fixes = [f"use {_ctor(module, channels)} to take the {channels} channels the layer "
                     f"before gives"]
        diagnosis = _diagnosis(name, "channels",
                               f"{name} expects {plural(m.in_channels, 'input channel')} but "
                               f"gets {channels} (input {format_shape(shape)})", shape,
                               f"N×{channels_in}×{names}", fixes)
        diagnosis.input_fix = input_fix
        return diagnosis
    formulas = module_formulas(module, shape)
    if any(f.value < 1 for f in formulas):
        return _too_small(name, shape, n, formulas, module=module)
    return None


def _channels_first(shape: Shape, n: int) -> Shape:
    """N×H×W×C -> N×C×H×W (or H×W×C -> C×H×W without the batch)."""
    lead = shape[:-n - 1]
    return (*lead, shape[-1], *shape[-n - 1:-1])


def _typed(shape: Shape, n: int) -> str:
    """As the user would type it: '1x28x28' (a batch of one left out, it is optional)."""
    sample = shape[1:] if len(shape) == n + 2 and shape[0] == 1 else shape
    return format_shape(sample, sep="x")


def _check_batchnorm(m: Any, x: torch.Tensor) -> Diagnosis | None:
    name, shape = type(m).__name__, tuple(x.shape)
    if x.dim() < 2 or shape[1] == m.num_features:
        return None
    return _diagnosis(name, "channels",
                      f"{name} expects {plural(m.num_features, 'channel')} but gets {shape[1]} "
                      f"(input {format_shape(shape)})", shape, f"N×{m.num_features}×…",
                      [f"use nn.{name}({shape[1]})"])


def _check_groupnorm(m: Any, x: torch.Tensor) -> Diagnosis | None:
    shape = tuple(x.shape)
    if x.dim() < 2 or shape[1] == m.num_channels:
        return None
    return _diagnosis("GroupNorm", "channels",
                      f"GroupNorm expects {plural(m.num_channels, 'channel')} but gets "
                      f"{shape[1]}", shape, f"N×{m.num_channels}×…",
                      [f"use nn.GroupNorm({m.num_groups}, {shape[1]})"])


def _check_layernorm(m: Any, x: torch.Tensor) -> Diagnosis | None:
    shape, ns = tuple(x.shape), tuple(m.normalized_shape)
    trailing = shape[-len(ns):]
    if trailing == ns:
        return None
    arg = trailing[0] if len(trailing) == 1 else list(trailing)
    return _diagnosis("LayerNorm", "features",
                      f"LayerNorm expects the last dims to be {format_shape(ns)} but gets "
                      f"{format_shape(shape)}", shape, f"(*, {format_shape(ns)})",
                      [f"use nn.LayerNorm({arg})"])


def _check_embedding(m: Any, x: torch.Tensor) -> Diagnosis | None:
    if not (x.dtype.is_floating_point or x.dtype.is_complex):
        return None
    name, shape = type(m).__name__, tuple(x.shape)
    return _diagnosis(name, "dtype",
                      f"{name} expects integer token ids but gets {str(x.dtype)[6:]} "
                      f"(input {format_shape(shape)})", shape, "int64 indices",
                      ["feed int64 input (--dtype int64)"])


def _check_rnn(m: Any, x: torch.Tensor) -> Diagnosis | None:
    name, shape = type(m).__name__, tuple(x.shape)
    if x.dim() not in (2, 3):
        return _diagnosis(name, "rank",
                          f"{name} expects a 3D input (batch, steps, features) or 2D without the "
                          f"batch but gets {x.dim()}D {format_shape(shape)}", shape,
                          f"N×T×{m.input_size}", ["reshape to (batch, steps, features)"])
    if shape[-1] == m.input_size:
        return None
    return _diagnosis(name, "features",
                      f"{name} expects {m.input_size} features per step but gets {shape[-1]} "
                      f"(input {format_shape(shape)})", shape, f"N×T×{m.input_size}",
                      [f"use nn.{name}({shape[-1]}, {m.hidden_size})"])


_CHECKS: list[tuple[type | tuple[type, ...], Callable[[Any, torch.Tensor], Diagnosis | None]]] = [
    (nn.modules.batchnorm._BatchNorm, _check_batchnorm),
    (nn.GroupNorm, _check_groupnorm),
    (nn.LayerNorm, _check_layernorm),
    ((nn.Embedding, nn.EmbeddingBag), _check_embedding),
    (nn.RNNBase, _check_rnn),
]


def validate_function(name: str, args: tuple, kwargs: dict) -> Diagnosis | None:
    """F.max_pool2d & co. called in a forward: is the input big enough?"""
    formulas = function_formulas(name, args, kwargs)
    if not any(f.value < 1 for f in formulas):
        return None
    x = bind_call(name, args, kwargs).get("input")
    shape = tuple(getattr(x, "shape", ()))
    return _too_small(f"F.{name}", shape, len(formulas), formulas)


def _too_small(name: str, shape: Shape, n: int, formulas: list, module: nn.Module | None = None
               ) -> Diagnosis:
    spatial = format_shape(shape[-n:])
    result = format_shape([f.value for f in formulas])
    if module is not None and isinstance(module, nn.modules.conv._ConvNd) \
            and not getattr(module, "transposed", False):
        m: Any = module
        need = [m.dilation[i] * (m.kernel_size[i] - 1) + 1 for i in range(n)]
        message = (f"{name} with kernel {format_shape(m.kernel_size)} needs at least "
                   f"{format_shape(tuple(need))} per channel but gets {spatial} "
                   f"(input {format_shape(shape)})")
    else:
        message = f"{name} would make {result} from {spatial} (input {format_shape(shape)})"
    return Diagnosis("", name, "too_small", message, got=[shape], expected="a larger input",
                     fixes=["use a smaller kernel_size or less pooling before it"], solvable=True)


# --- errors we did not foresee ---------------------------------------------------------------

_MATMUL = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
_MATMUL_META = re.compile(r"a and b must have same reduction dim, but got \[(\d+), (\d+)\] X "
                          r"\[(\d+), (\d+)\]")
_CHANNELS = re.compile(r"expected input\[([\d, ]+)\] to have (\d+) channels, but got (\d+)")
_VIEW = re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)")


def diagnose_error(exc: BaseException, type_name: str, got: list[Shape],
                   call: str = "") -> Diagnosis:
    """Turn an exception raised inside a layer into a Diagnosis, reading known messages."""
    text = str(exc)
    raw = first_line(exc, with_type=True)
    m = _MATMUL.search(text) or _MATMUL_META.search(text)
    if m:
        got_f, want = int(m.group(2)), int(m.group(3))
        return Diagnosis("", type_name, "linear_features",
                         f"{type_name} expects {want} features but gets {got_f}", got=got,
                         expected=f"(*, {want})", fixes=[f"make the layer take {got_f} features"],
                         error=raw, solvable=True)
    m = _CHANNELS.search(text)
    if m:
        return Diagnosis("", type_name, "channels",
                         f"{type_name} expects {m.group(2)} input channels but gets {m.group(3)} "
                         f"(input {m.group(1).replace(', ', '×')})", got=got, error=raw)
    m = _VIEW.search(text)
    if m:
        dims = [int(d) for d in m.group(1).split(",")]
        size = int(m.group(2))
        known = math.prod(d for d in dims if d != -1)
        shape_text = format_shape(got[0]) if got else str(size)
        what = call or "view"
        if -1 in dims:
            message = (f"{what} gets {shape_text} = {size} values, not a multiple of {known}")
        else:
            message = f"{what} needs {known} values but gets {shape_text} = {size}"
        return Diagnosis("", type_name, "view", message, got=got, expected=f"{known}·k values",
                         error=raw, solvable=True)
    if "Kernel size can't be greater" in text or "Output size is too small" in text:
        return Diagnosis("", type_name, "too_small", f"{type_name}: input too small ({raw})",
                         got=got, error=raw, solvable=True,
                         fixes=["use a smaller kernel_size or less pooling before it"])
    return Diagnosis("", type_name, "error", f"{type_name} failed: {raw}", got=got, error=raw)


def is_meta_limitation(exc: BaseException) -> bool:
    """The layer cannot run on the meta device (no meta kernel, or it reads tensor values)."""
    text = str(exc).lower()
    if isinstance(exc, NotImplementedError):
        return True
    return isinstance(exc, RuntimeError) and (
        "meta tensor" in text or "meta device" in text or "'meta' backend" in text
        or "data-dependent" in text or "data dependent" in text)
