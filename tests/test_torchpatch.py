"""One smoke test per torch workaround in tui_nn.torchpatch: each checks the torch internal the
workaround relies on, and fails with a message naming it when a torch upgrade changes it."""

from __future__ import annotations

import inspect
import subprocess
import sys

import torch

aten = torch.ops.aten


def _run(script: str) -> None:
    """Fresh interpreter: what a trace imports is only visible before anything else did."""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok"), result.stdout[-2000:]


def test_nodynamo_matches_torchs_disable_dynamo_cache():
    from torch._compile import _disable_dynamo

    from tui_nn.torchpatch import nodynamo

    source = inspect.getsource(_disable_dynamo)
    assert nodynamo._CACHE_ATTR in source, (
        "torch._compile._disable_dynamo no longer caches its wrapper in fn.__dynamo_disable: "
        "tui_nn.torchpatch.nodynamo pre-fills that attribute")
    assert "fn" in nodynamo._inner_code().co_freevars, (
        "torch._disable_dynamo's inner wrapper no longer closes over `fn`")
    assert len(nodynamo._disabled_functions()) > 50, (
        "few torch._disable_dynamo-wrapped meta kernels found in torch._decomp/_refs")
    _run("""
import sys, torch
from tui_nn.torchpatch.nodynamo import no_dynamo_import
x = torch.empty(2, 8, 16, device="meta")
with no_dynamo_import():
    torch.rsqrt(x).div(3).reciprocal()
    torch.arange(16, device="meta")
assert "torch._dynamo" not in sys.modules, "a meta kernel imported torch._dynamo"
print("ok")
""")


def test_nosympy_stands_in_for_the_helpers_torch_imports():
    import torch.fx.experimental.symbolic_shapes as real

    from tui_nn.torchpatch import nosympy

    assert nosympy._NAME == real.__name__
    missing = [name for name in nosympy._FAST if not callable(getattr(real, name, None))]
    assert not missing, f"{real.__name__} no longer has {missing}: update nosympy._FAST"
    _run("""
import sys, torch
import torch.nn.functional as F
from tui_nn.torchpatch.nodynamo import no_dynamo_import  # dynamo would import sympy itself
from tui_nn.torchpatch.nosympy import no_sympy_import
q = torch.empty(1, 4, 16, 8, device="meta")
with no_dynamo_import(), no_sympy_import():
    y = (q * torch.rsqrt(q.pow(2).mean(-1, keepdim=True) + 1e-5)).view(1, 4, 128)
    torch.cat([y, y], dim=-1).reshape(4, -1).transpose(0, 1)
    F.scaled_dot_product_attention(q, q, q, is_causal=True)
for heavy in ("sympy", "torch.fx.experimental.symbolic_shapes"):
    assert heavy not in sys.modules, f"tracing on meta imported {heavy}"
print("ok")
""")


def test_metacache_reads_op_schemas_as_torch_writes_them():
    from tui_nn.torchpatch.metacache import MetaOpCache, is_functional, cached_call

    schema = aten.mul.Tensor._schema
    for attr in ("is_mutable", "arguments", "returns"):
        assert hasattr(schema, attr), f"torch's FunctionSchema lost .{attr} (metacache)"
    assert is_functional(aten.mul.Tensor) and is_functional(aten.mm.default)
    for impure in (aten.add_.Tensor, aten.view.default, aten.split.Tensor,
                   aten.mul.out):
        assert not is_functional(impure), f"{impure} read as pure from its schema"
    cache = MetaOpCache()
    a = torch.empty(3, 5, device="meta")
    b = torch.empty(5, 7, device="meta").t().contiguous().t()  # non-default strides
    for _ in range(2):
        out, extra = cached_call(cache, aten.mm.default, (a, b), {}, lambda o: "flops")
        real = aten.mm.default(a, b)
        assert (out.shape, out.stride(), out.dtype) == (real.shape, real.stride(), real.dtype)
        assert extra == "flops"
    assert cache.hits == 1


def test_flopformulas_load_torchs_table_without_triton():
    from tui_nn.torchpatch.flopformulas import flop_registry

    registry = flop_registry()
    for op in (aten.mm, aten.addmm, aten.bmm, aten.convolution,
               aten._scaled_dot_product_flash_attention):
        assert op in registry, f"torch.utils.flop_counter.flop_registry has no {op}"
    a, b = torch.empty(2, 3, device="meta"), torch.empty(3, 4, device="meta")
    assert registry[aten.mm](a, b, out_val=aten.mm.default(a, b)) == 2 * 2 * 3 * 4
    _run("""
import sys
from tui_nn.torchpatch.flopformulas import flop_registry
assert flop_registry(), "empty flop table"
assert "triton" not in sys.modules, "loading torch.utils.flop_counter imported triton"
import torch.utils.flop_counter as fc
assert fc._JITFunction.__name__ == "LazyTritonKernel", "flop_counter lost _JITFunction"
print("ok")
""")
