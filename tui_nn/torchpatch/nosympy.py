"""Trace on meta without importing sympy (0.3 s, a sixth of a 70B decoder's inspection).

The Python meta kernels (`torch._refs`, `torch._prims_common`) check shapes with `torch._check`
and helpers such as `guard_or_false` and `sym_eq`, which they import from
`torch.fx.experimental.symbolic_shapes` on every call; importing that module imports sympy.
Those helpers only need sympy for symbolic sizes (SymInt, SymBool) under torch.compile; an
inspection passes plain ints and bools. So while it traces, and only while nothing has imported
the module yet, `no_sympy_import()` puts a light stand-in there: the helpers answer plain values
as the real ones do and hand anything else, and any other name, to the real module, which is
imported then and replaces the stand-ins for good. Type promotion imports sympy itself for one
isinstance check: a stand-in `sympy` answers it. The stand-ins leave when the last trace ends.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from typing import Any, Callable

from tui_nn.torchpatch.shared import SharedPatch

_NAME = "torch.fx.experimental.symbolic_shapes"
_PARENT, _, _LEAF = _NAME.rpartition(".")
_SYMPY = "sympy"


class _Symbolic(Exception):
    """A value the stand-in does not answer: the real helper does."""


def _plain_bool(a: Any, *_: Any) -> bool:
    if type(a) is not bool:
        raise _Symbolic
    return a


def _plain_int_or_bool(a: Any) -> int | bool:
    if type(a) not in (bool, int):
        raise _Symbolic
    return a


def _all_bools(x: Any, *others: Any) -> tuple[bool, ...]:
    values = (x, *others)
    if not all(type(v) is bool for v in values):
        raise _Symbolic
    return values


def _sym_eq(x: Any, y: Any) -> bool:
    if isinstance(x, (tuple, list)) and isinstance(y, (tuple, list)):
        # A list, not a generator: torch compares every pair, so a bad later pair still fails.
        return len(x) == len(y) and all([_sym_eq(a, b) for a, b in zip(x, y)])  # noqa: C419
    if type(x) in (bool, int) and type(y) in (bool, int):
        return x == y
    raise _Symbolic


def _not_symbolic(a: Any) -> None:
    import torch

    if isinstance(a, (torch.SymInt, torch.SymFloat, torch.SymBool)):
        raise _Symbolic


def _no_nested_int(s: Any) -> bool:
    _not_symbolic(s)
    return False


def _has_hint(a: Any) -> bool:
    _not_symbolic(a)
    return True


# What each helper returns for plain values (read off torch's own definitions).
_FAST: dict[str, Callable[..., Any]] = {
    "expect_true": _plain_bool,
    "guard_bool": _plain_bool,
    "guard_or_false": _plain_bool,
    "guard_or_true": _plain_bool,
    "guard_size_oblivious": _plain_bool,
    "statically_known_true": _plain_bool,
    "sym_and": lambda x, *others: all(_all_bools(x, *others)),
    "sym_or": lambda x, *others: any(_all_bools(x, *others)),
    "sym_eq": _sym_eq,
    "is_nested_int": _no_nested_int,
    "guarding_hint_or_throw": _plain_int_or_bool,
    "has_guarding_hint": _has_hint,
}

_lock = threading.RLock()
_real_wanted = False  # something needed a real module: stand-ins never again
_stand_ins: list[types.ModuleType] = []


def _real_module(name: str = _NAME) -> types.ModuleType:
    """The real module. The first call removes the stand-ins for good, imports the real modules
    (sympy first: it needs nothing of torch's; the shapes module only when it is the one asked
    for) and copies their names into the stand-ins, so that code which kept a stand-in (a module
    that ran `import sympy` during a trace) sees the real `Basic`.

    Asking for sympy must not import the shapes module: the asker may be one of the torch
    modules the shapes module imports, half initialised (another thread's `import torch._dynamo`
    while a trace runs), and the shapes module would fail on it as a circular import."""
    global _real_wanted
    with _lock:
        _real_wanted = True  # from now on no trace puts stand-ins back
        kept = list(_stand_ins)
        _remove_stand_ins()
    # Imported outside our lock: importlib's per-module locks order threads that import the same
    # modules, and a thread holding one of those while it waits for our lock would deadlock.
    for real_name in (_SYMPY,) if name == _SYMPY else (_SYMPY, _NAME):
        real = importlib.import_module(real_name)  # binds it on its package too
        for stand_in in kept:
            if stand_in.__name__ == real_name:
                stand_in.__dict__.update(
                    {k: v for k, v in vars(real).items() if not k.startswith("__")})
    return sys.modules[name]


def _helper(name: str, fast: Callable[..., Any]) -> Callable[..., Any]:
    def helper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fast(*args, **kwargs)
        except _Symbolic:
            return getattr(_real_module(), name)(*args, **kwargs)

    helper.__name__ = helper.__qualname__ = name
    return helper


def _getattr_of(module_name: str) -> Callable[[str], Any]:
    def module_getattr(name: str) -> Any:
        if name.startswith("__"):  # the import system probing (__path__, __file__ ...)
            raise AttributeError(name)
        return getattr(_real_module(module_name), name)

    return module_getattr  # PEP 562: a name the stand-in lacks loads the real module


def _make_stand_ins() -> list[types.ModuleType]:
    shapes = types.ModuleType(_NAME, "tui-nn's stand-in: see tui_nn.torchpatch.nosympy")
    for name, fast in _FAST.items():
        setattr(shapes, name, _helper(name, fast))
    shapes.__getattr__ = _getattr_of(_NAME)
    # Type promotion asks `isinstance(x, sympy.Basic)` of every argument; while sympy has never
    # been imported no object can be one, so a class nothing derives from answers the same.
    sympy = types.ModuleType(_SYMPY, "tui-nn's stand-in: see tui_nn.torchpatch.nosympy")
    sympy.Basic = type("Basic", (), {})
    sympy.__getattr__ = _getattr_of(_SYMPY)
    return [shapes, sympy]


def _remove_stand_ins() -> None:
    for module in _stand_ins:
        if sys.modules.get(module.__name__) is module:
            del sys.modules[module.__name__]
    parent = sys.modules.get(_PARENT)
    if parent is not None and getattr(parent, _LEAF, None) in _stand_ins:
        delattr(parent, _LEAF)
    _stand_ins.clear()


def _install() -> None:
    if not _real_wanted and _NAME not in sys.modules and _SYMPY not in sys.modules:
        parent = sys.modules.get(_PARENT) or importlib.import_module(_PARENT)
        _stand_ins[:] = _make_stand_ins()
        for module in _stand_ins:
            sys.modules[module.__name__] = module
        setattr(parent, _LEAF, _stand_ins[0])


# While inside (on any thread), torch's shape helpers do not import sympy. The lock is the one
# _real_module takes: a trace asking for the real module removes the stand-ins under it.
_patch = SharedPatch(_install, _remove_stand_ins, _lock)
no_sympy_import = _patch.use


__all__ = ["no_sympy_import"]
