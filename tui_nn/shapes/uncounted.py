"""What the mult-add count leaves out, said instead of silently counted as 0.

`mult_adds` counts what torch's formula table knows (mm, addmm, bmm, conv, attention): the
convention of torchvision's published figures and of torchinfo. `flops` is 2 × mult_adds.
Every other aten op that does arithmetic is listed in `not_counted` with how many times it
ran and its output shape, under a category: 'elementwise' (relu, add, mul, dropout's mask),
'norm' (batch/layer/group norm, softmax), 'pool', 'reduction' (sum, mean, max) or 'other'
(fft, sort, anything else without a formula: the ones that can hide real work). Ops that
only move or make data (views, copies, cat, indexing, constructors) are neither.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

# aten ops that do no arithmetic: moving, viewing or making tensors.
_FREE = frozenset((
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like",
    "full", "full_like", "new_empty", "new_zeros", "new_ones", "new_full",
    "new_empty_strided", "arange", "clone", "_to_copy", "copy", "copy_", "cat", "stack",
    "contiguous", "fill", "fill_", "zero_", "detach", "lift_fresh", "lift_fresh_copy",
    "index_select", "gather", "embedding", "constant_pad_nd", "repeat", "flip", "roll",
    "index", "_unsafe_index", "scatter", "index_put", "index_put_", "tril", "triu",
    "randn", "rand", "randint", "randperm", "normal_", "uniform_", "bernoulli",
    "bernoulli_", "_local_scalar_dense", "masked_fill", "masked_fill_", "where",
    "split_with_sizes_copy", "unbind_copy", "slice_scatter", "select_scatter",
    "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d",
    "replication_pad2d", "replication_pad3d", "_pad_circular", "block_diag",
    "scalar_tensor", "resize_", "set_", "linspace", "eye", "one_hot", "pad",
))
_NORMS = frozenset((
    "native_batch_norm", "_native_batch_norm_legit", "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit_functional", "native_layer_norm", "native_group_norm",
    "_softmax", "_log_softmax", "rms_norm", "_fused_rms_norm", "cudnn_batch_norm",
    "instance_norm", "_weight_norm_interface",
))
_REDUCTIONS = frozenset((
    "sum", "mean", "amax", "amin", "max", "min", "var", "std", "var_mean", "std_mean",
    "prod", "norm", "linalg_vector_norm", "argmax", "argmin", "logsumexp", "cumsum",
    "cumprod", "any", "all", "topk", "sort", "median",
))
CATEGORIES = ("other", "elementwise", "norm", "pool", "reduction")


@dataclass
class NotCounted:
    """One aten op that ran with no mult-add formula."""

    op: str  # 'aten._fft_r2c'
    category: str  # one of CATEGORIES
    calls: int
    output_shape: tuple[int, ...]  # of its first call

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_shape"] = list(self.output_shape)
        return data


# By the op's id: an OpOverload hashes in Python, and ops live as long as the process.
_CATEGORY: dict[int, str | None] = {}


def category_of(func: Any) -> str | None:
    """The not-counted category of an aten op without a formula; None when it does no
    arithmetic (a view, a copy, a constructor)."""
    known = _CATEGORY.get(id(func), "?")
    if known != "?":
        return known
    schema = getattr(func, "_schema", None)
    if schema is None:  # a higher-order operator: its body's ops are seen one by one
        return None
    name = op_name(func)
    aliases = any(r.alias_info is not None for r in schema.returns)
    if name in _FREE or (aliases and not schema.is_mutable):
        category = None  # views return aliases and compute nothing
    elif name in _NORMS:
        category = "norm"
    elif "pool" in name:
        category = "pool"
    elif name in _REDUCTIONS:
        category = "reduction"
    elif torch.Tag.pointwise in func.tags or name.rstrip("_") in ("relu", "gelu", "silu"):
        category = "elementwise"
    else:
        category = "other"
    _CATEGORY[id(func)] = category
    return category


class UncountedTally:
    """Calls per op, and the first call's output shape."""

    def __init__(self) -> None:
        self._seen: dict[str, list[Any]] = {}  # op -> [category, calls, shape]

    def add(self, entry: tuple[str, str, tuple[int, ...]]) -> None:
        op, category, shape = entry
        self._seen.setdefault(op, [category, 0, shape])[1] += 1

    def records(self) -> list[NotCounted]:
        """'other' first (the ones that may hide real work), then by calls."""
        out = [NotCounted(op, c, n, s) for op, (c, n, s) in self._seen.items()]
        out.sort(key=lambda r: (CATEGORIES.index(r.category), -r.calls, r.op))
        return out


def uncounted_entry(func: Any, out: Any) -> tuple[str, str, tuple[int, ...]] | None:
    category = category_of(func)
    if category is None:
        return None
    first = out if isinstance(out, torch.Tensor) else next(
        (o for o in out if isinstance(o, torch.Tensor)), None) \
        if isinstance(out, (tuple, list)) else None
    shape = tuple(first.shape) if first is not None else ()
    # 'aten.relu'; a custom op keeps its own namespace ('torchvision.nms').
    return func._schema.name.replace("::", "."), category, shape


def op_name(func: Any) -> str:
    """'_fft_r2c' for aten._fft_r2c.default."""
    return func._schema.name.split("::")[-1]


def summary(records: list[NotCounted], limit: int = 6) -> str:
    """'3× aten._fft_r2c (other, 1×9), 4× aten.relu (elementwise, 1×16), … and 2 more'."""
    parts = [f"{r.calls}× {r.op} ({r.category}, {'×'.join(map(str, r.output_shape)) or '()'})"
             for r in records[:limit]]
    more = f" and {len(records) - limit} more" if len(records) > limit else ""
    return ", ".join(parts) + more


def short_summary(records: list[NotCounted]) -> str:
    """Calls per category, for a narrow pane: '1 other, 6 elementwise, 2 pool'."""
    calls = {c: sum(r.calls for r in records if r.category == c) for c in CATEGORIES}
    return ", ".join(f"{n} {c}" for c, n in calls.items() if n)
