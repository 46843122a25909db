"""The inspector's fast paths (issue 17): no torch._dynamo, sympy or triton import, initialisers
skipped on meta, memoised meta kernels that give the same shapes and mult-adds as running every
kernel."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from tui_nn.shapes.trace import Tracer, make_inputs
from tui_nn.zoo.building import building_on

LLAMA = Path(__file__).resolve().parents[1] / "benchmarks" / "llama70b.py"

# A small Llama from the benchmark's file (the same ops as the 70B: rsqrt, rope, GQA, SDPA),
# every zoo model, with and without a memory estimate: none of it may import torch._dynamo
# (1-2.5 s), sympy with torch's symbolic shapes (0.3 s) or triton (0.08 s); afterwards the real
# modules import as usual.
NO_DYNAMO = f"""
import sys, runpy
from tui_nn.shapes import inspect_model
from tui_nn.shapes.memory import MemoryRequest
from tui_nn.zoo.building import building_on
from tui_nn.zoo.registry import MODELS
for name in MODELS:
    assert inspect_model(name).ok, name
    assert inspect_model(name, memory=MemoryRequest(batch_size=4)).ok, name
Llama70B = runpy.run_path({str(LLAMA)!r})["Llama70B"]
with building_on("meta"):
    model = Llama70B(vocab=100, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden=128)
assert inspect_model(model, "1x16x64", memory=MemoryRequest(batch_size=2, amp="bf16")).ok
for heavy in ("torch._dynamo", "sympy", "torch.fx.experimental.symbolic_shapes", "triton"):
    assert heavy not in sys.modules, heavy
import sympy, torch
import torch.fx.experimental.symbolic_shapes as shapes
assert sympy.Basic.__module__ == "sympy.core.basic" and hasattr(shapes, "ShapeEnv")
assert torch.fx.experimental.symbolic_shapes is shapes
print("ok")
"""


def test_inspecting_never_imports_dynamo():
    result = subprocess.run([sys.executable, "-c", NO_DYNAMO], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


# The app traces on two threads at once (the inspector and the memory line): one finishing
# must not take the other's protection away.
CONCURRENT = """
import sys, threading
from tui_nn.shapes import inspect_model
from tui_nn.shapes.memory import MemoryRequest
def work(name):
    for _ in range(3):
        assert inspect_model(name, memory=MemoryRequest(batch_size=4)).ok
threads = [threading.Thread(target=work, args=(n,)) for n in ("inception", "resnet", "lstm")]
for t in threads: t.start()
for t in threads: t.join()
assert "torch._dynamo" not in sys.modules
print("ok")
"""


def test_concurrent_inspections_never_import_dynamo():
    result = subprocess.run([sys.executable, "-c", CONCURRENT], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


# A symbolic value (or any name the stand-in lacks) inside a trace gets the real module, which
# then stays: the stand-ins never answer for what they do not know.
STAND_IN_HANDS_OVER = """
import sys, torch
from tui_nn.torchpatch.nosympy import no_sympy_import
with no_sympy_import():
    import sympy as kept  # what a module imported during a trace holds
    from torch.fx.experimental.symbolic_shapes import sym_eq, expect_true
    assert sym_eq([1, 2], (1, 2)) is True and expect_true(True) is True
    assert "sympy.core" not in sys.modules
    try:
        sym_eq(1.5, 2)  # not an int: the real helper raises its own error
    except AssertionError as exc:
        assert "unexpected sym_eq" in str(exc)
    else:
        raise SystemExit("the stand-in answered a value it does not know")
    import sympy
    assert sympy.Basic.__module__ == "sympy.core.basic"
    assert kept.Basic is sympy.Basic and isinstance(sympy.Symbol("x"), kept.Basic)
shapes = sys.modules["torch.fx.experimental.symbolic_shapes"]
assert hasattr(shapes, "ShapeEnv") and torch.fx.experimental.symbolic_shapes is shapes
print("ok")
"""


def test_the_sympy_stand_in_hands_anything_symbolic_to_the_real_module():
    result = subprocess.run([sys.executable, "-c", STAND_IN_HANDS_OVER], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


# The app's training thread imports torch._dynamo (torch.optim's first step) while the inspector
# traces on another thread. torch.utils._sympy.numbers then asks the stand-in `sympy` for `Expr`:
# handing over must not import the shapes module, which imports that half-initialised module
# (it failed: "cannot import name 'int_oo' from partially initialized module").
IMPORT_DURING_TRACE = """
from tui_nn.torchpatch.nosympy import no_sympy_import
with no_sympy_import():
    import torch.utils._sympy.numbers  # noqa: F401
print("ok")
"""

IMPORT_ON_ANOTHER_THREAD = """
import importlib, sys, threading, torch
from tui_nn.torchpatch.nosympy import no_sympy_import
tracing, imported = threading.Event(), threading.Event()
errors = []

def trace():
    with no_sympy_import():
        tracing.set()
        imported.wait(120)

def train():
    tracing.wait(120)
    try:
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        model(torch.ones(4, 3)).sum().backward()
        opt.step()
        importlib.import_module("torch._dynamo")  # whatever the optimizer did not import yet
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        imported.set()

threads = [threading.Thread(target=trace), threading.Thread(target=train)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors
import sympy
from torch.fx.experimental.symbolic_shapes import ShapeEnv  # the real module, whole
assert sympy.Basic.__module__ == "sympy.core.basic"
with no_sympy_import():  # the real modules stay: no stand-in comes back
    assert sys.modules["sympy"] is sympy
print("ok")
"""


def test_a_thread_importing_torch_dynamo_during_a_trace_gets_the_real_modules():
    for script in (IMPORT_DURING_TRACE, IMPORT_ON_ANOTHER_THREAD):
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip() == "ok"


def test_the_stand_in_helpers_answer_plain_values_as_torch_does():
    import torch.fx.experimental.symbolic_shapes as real

    from tui_nn.torchpatch.nosympy import _FAST

    plain = [True, False, 0, 3, -2, [1, 2], (1, 2), [1, [2, 3]], (), 1.5]

    def outcome(fn, *args):
        try:
            return ("value", fn(*args))
        except Exception as exc:  # noqa: BLE001 - the stand-in must fail where torch fails
            return ("error", type(exc).__name__)

    for name, fast in _FAST.items():
        real_fn = getattr(real, name)
        arity = 2 if name in ("sym_eq", "sym_and", "sym_or") else 1
        for args in itertools.product(plain, repeat=arity):
            got = outcome(fast, *args)
            if got[0] == "error":
                continue  # the stand-in hands these to torch, whatever torch then does
            assert got == outcome(real_fn, *args), (name, args)


def test_building_on_meta_skips_init_but_keeps_shapes():
    with building_on("meta"):
        model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3), nn.LayerNorm(3))
    shapes = [tuple(p.shape) for p in model.parameters()]
    assert shapes == [(10, 4), (3, 4), (3,), (3,), (3,)]
    assert all(p.is_meta for p in model.parameters())
    with building_on("cpu"):  # elsewhere initialisers run as usual
        linear = nn.Linear(4, 3)
    assert linear.weight.device.type == "cpu" and linear.weight.abs().sum() > 0


class _Twice(nn.Module):
    """The same ops with the same shapes twice, then different shapes: hits and misses."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)
        self.c = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 8) -> (B, 4)
        x = torch.rsqrt(self.a(x).pow(2) + 1)
        x = torch.rsqrt(self.b(x).pow(2) + 1)
        return self.c(x) / 3


def test_memoised_meta_kernels_give_the_same_shapes_and_mult_adds():
    with building_on("meta"):
        model = _Twice()
    tracer = Tracer(model, make_inputs([(5, 8)], [torch.float32]))
    rows = tracer.run().rows
    assert tracer.op_cache.hits > 0
    by_path = {r.path: r for r in rows}
    assert by_path["c"].output_shapes == [(5, 4)]
    assert [by_path[p].mult_adds for p in ("a", "b", "c")] == [5 * 8 * 8, 5 * 8 * 8, 5 * 8 * 4]
    assert by_path[""].mult_adds == 5 * 8 * 8 * 2 + 5 * 8 * 4
