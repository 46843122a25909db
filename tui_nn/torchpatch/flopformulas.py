"""torch's own flop formulas (mm, addmm, bmm, conv, sdpa), loaded without importing triton.

`torch.utils.flop_counter` imports triton at module level (80 ms) only so that
`register_flop_formula` can accept a triton kernel; reading its table never needs it. So the
first load blocks that one import and hands the module a class that imports triton the first
time anything asks whether an object is a triton kernel: the same answer, paid for on use.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

_MODULE = "torch.utils.flop_counter"
_lock = threading.Lock()


class _TritonKernelType(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        try:
            from triton.runtime.jit import JITFunction
        except ImportError:
            return False
        return isinstance(obj, JITFunction)


class LazyTritonKernel(metaclass=_TritonKernelType):
    """Stands for `triton.runtime.jit.JITFunction` in isinstance checks."""


def _load_without_triton() -> Any:
    logger = logging.getLogger(_MODULE)  # it warns "triton not found" when the import fails
    disabled = logger.disabled
    sys.modules["triton"] = None  # type: ignore[assignment] - makes `import triton` fail fast
    logger.disabled = True
    try:
        import torch.utils.flop_counter as module
    finally:
        del sys.modules["triton"]
        logger.disabled = disabled
    module._JITFunction = LazyTritonKernel
    return module


def flop_registry() -> dict[Any, Any]:
    """{aten op packet: formula(*args, out_val=...) -> flops}; empty on a torch without it."""
    with _lock:
        try:
            if _MODULE in sys.modules or "triton" in sys.modules:
                import torch.utils.flop_counter as module
            else:
                module = _load_without_triton()
        except ImportError:  # pragma: no cover - very old torch
            return {}
    return module.flop_registry
