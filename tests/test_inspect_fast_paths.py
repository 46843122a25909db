"""The inspector's fast paths (issue 17): no torch._dynamo import, initialisers skipped on meta,
memoised meta kernels that give the same shapes and mult-adds as running every kernel."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from torch import nn

from tui_nn.shapes.trace import Tracer, make_inputs
from tui_nn.zoo.building import building_on

LLAMA = Path(__file__).resolve().parents[1] / "benchmarks" / "llama70b.py"

# A small Llama from the benchmark's file (the same ops as the 70B: rsqrt, rope, GQA, SDPA),
# every zoo model, and the CLI: none of it may import torch._dynamo (1-2.5 s).
NO_DYNAMO = f"""
import sys, runpy
from tui_nn.shapes import inspect_model
from tui_nn.zoo.building import building_on
from tui_nn.zoo.registry import MODELS
for name in MODELS:
    assert inspect_model(name).ok, name
Llama70B = runpy.run_path({str(LLAMA)!r})["Llama70B"]
with building_on("meta"):
    model = Llama70B(vocab=100, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, hidden=128)
assert inspect_model(model, "1x16x64").ok
assert "torch._dynamo" not in sys.modules
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
