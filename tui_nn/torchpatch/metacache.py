"""Memoised meta kernels: the second `mul` of the same shapes costs a dict lookup.

Many meta kernels are Python references (`torch._refs`: type promotion, broadcasting, stride
rules) costing 0.1-1 ms each; an 80-layer decoder calls the same few dozen of them with the
same shapes 80 times. On meta an op's result is fully described by its output shapes, strides
and dtypes, which depend only on the op and its arguments' shapes, strides, dtypes and
non-tensor values. So, for ops that make new tensors (no views, no in-place, no `out=`), the
first call's outputs are described once and later calls get fresh meta tensors of that
description.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

_Spec = tuple[tuple[int, ...], tuple[int, ...], torch.dtype]
_HASHABLE = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.layout,
             torch.memory_format)


class _Unhashable(Exception):
    pass


def _key_of(values: tuple | list) -> tuple:
    """The description of a call's arguments (one loop per nesting level: called per op)."""
    out = []
    for value in values:
        if isinstance(value, torch.Tensor):
            if not value.is_meta or value.is_conj() or value.is_neg():
                raise _Unhashable
            out.append(("T", value.shape, value.stride(), value.dtype, value.storage_offset()))
        elif isinstance(value, (list, tuple)):
            out.append(_key_of(value))
        elif isinstance(value, _HASHABLE) and not isinstance(value, torch.SymInt):
            out.append(value)
        else:
            raise _Unhashable
    return tuple(out)


# Keyed by the op's id: an OpOverload hashes in Python (a call per lookup), and ops live as
# long as the process, so an id is never reused for another op.
_FUNCTIONAL: dict[int, bool] = {}


def is_functional(func: Any) -> bool:
    """No argument or result aliases (views, in-place, out=) and every result is a Tensor."""
    known = _FUNCTIONAL.get(id(func))
    if known is None:
        schema = func._schema
        known = (not schema.is_mutable
                 and all(a.alias_info is None for a in schema.arguments)
                 and all(r.alias_info is None and str(r.type) == "Tensor"
                         for r in schema.returns)
                 and bool(schema.returns))
        _FUNCTIONAL[id(func)] = known
    return known


class MetaOpCache:
    """op + argument description -> output description, plus an extra value (e.g. flops)."""

    def __init__(self) -> None:
        self._entries: dict[Any, tuple[list[_Spec], bool, Any]] = {}
        self.hits = 0

    def key(self, func: Any, args: tuple, kwargs: dict) -> Any:
        if not is_functional(func):
            return None
        try:
            return (id(func), _key_of(args), _key_of(tuple(sorted(kwargs.items()))) if kwargs
                    else ())
        except _Unhashable:
            return None

    def lookup(self, key: Any) -> tuple[Any, Any] | None:
        """(fresh outputs, extra) for a known key, else None."""
        entry = self._entries.get(key) if key is not None else None
        if entry is None:
            return None
        self.hits += 1
        specs, many, extra = entry
        outs = [torch.empty_strided(shape, stride, dtype=dtype, device="meta")
                for shape, stride, dtype in specs]
        return (tuple(outs) if many else outs[0]), extra

    def store(self, key: Any, out: Any, extra: Any) -> None:
        if key is None:
            return
        many = isinstance(out, (tuple, list))
        outs = list(out) if many else [out]
        if not all(isinstance(o, torch.Tensor) and o.device.type == "meta" for o in outs):
            return
        specs = [(tuple(o.shape), o.stride(), o.dtype) for o in outs]
        self._entries[key] = (specs, many, extra)


def cached_call(cache: MetaOpCache, func: Callable, args: tuple, kwargs: dict,
                extra_of: Callable[[Any], Any]) -> tuple[Any, Any]:
    """Run `func` (or reuse its description); `extra_of(out)` is computed on a miss only."""
    key = cache.key(func, args, kwargs)
    hit = cache.lookup(key)
    if hit is not None:
        return hit
    out = func(*args, **kwargs)
    extra = extra_of(out)
    cache.store(key, out, extra)
    return out, extra
