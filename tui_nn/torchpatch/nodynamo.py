"""Trace on meta without importing `torch._dynamo` (1-2.5 s on first use).

Many meta kernels are Python references (`torch._refs`: div, reciprocal, rsqrt, arange ...)
wrapped in `torch._disable_dynamo`, whose first call imports `torch._dynamo` only to wrap the
function in `torch._dynamo.disable` and caches that in `fn.__dynamo_disable`. An inspection
never runs under torch.compile, so while it traces, and only while nothing has imported dynamo
yet, `no_dynamo_import()` pre-fills that cache with the function itself, and removes exactly
what it filled when the last trace using it ends, so a later torch.compile gets the real
`disable` wrappers.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

from tui_nn.torchpatch.shared import SharedPatch

_CACHE_ATTR = "__dynamo_disable"
_MAX_DEPTH = 8  # wrappers around wrappers: out_wrapper(type_promotion(disable(_ref)))


def _inner_code() -> Any:
    from torch._compile import _disable_dynamo
    return _disable_dynamo(lambda: None).__code__


def _candidates() -> list[Any]:
    """The Python meta kernels and decompositions torch registered, and the refs modules."""
    import torch._decomp as decomp
    import torch._refs
    import torch._refs.nn.functional

    found: list[Any] = []
    for name, table in vars(decomp).items():
        if name.endswith("_table") and isinstance(table, dict):
            found.extend(table.values())
    for module in (torch._refs, torch._refs.nn.functional):
        found.extend(v for v in vars(module).values() if callable(v))
    return found


@functools.lru_cache(maxsize=1)  # the kernels are registered once, at import: walk them once
def _disabled_functions() -> tuple[Callable, ...]:
    """Every function a `_disable_dynamo` wrapper reachable from the candidates wraps: wrappers
    hide it in a closure cell (`functools.wraps(prim)` breaks the `__wrapped__` chain)."""
    code = _inner_code()
    seen: set[int] = set()
    out: list[Callable] = []
    frontier = [(f, 0) for f in _candidates()]
    while frontier:
        f, depth = frontier.pop()
        if id(f) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(f))
        if getattr(f, "__code__", None) is code:
            out.append(f.__closure__[code.co_freevars.index("fn")].cell_contents)
            continue
        nxt = [getattr(f, "__wrapped__", None)]
        nxt += [c.cell_contents for c in (getattr(f, "__closure__", None) or ())
                if _cell_is_function(c)]
        frontier.extend((g, depth + 1) for g in nxt if callable(g))
    return tuple(out)


def _cell_is_function(cell: Any) -> bool:
    try:
        return callable(cell.cell_contents) and hasattr(cell.cell_contents, "__code__")
    except ValueError:  # an empty cell
        return False


_filled: list[Callable] = []


def _fill() -> None:
    if "torch._dynamo" not in sys.modules:
        _filled[:] = [fn for fn in _disabled_functions()
                      if getattr(fn, _CACHE_ATTR, None) is None]
        for fn in _filled:
            setattr(fn, _CACHE_ATTR, fn)


def _empty() -> None:
    for fn in _filled:
        if getattr(fn, _CACHE_ATTR, None) is fn:
            delattr(fn, _CACHE_ATTR)
    _filled.clear()


# Traces on several threads at once share one filling.
_patch = SharedPatch(_fill, _empty)
no_dynamo_import = _patch.use


__all__ = ["no_dynamo_import"]
