"""Training-memory estimates (issue 17): the activations predicted on meta against what autograd
really saves on CPU (the same saved-tensor hooks on real tensors), grads and optimizer state
exact against torch's optimizers, the CLI's memory section, and a 70B estimate without RSS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.shapes import inspect_model
from tui_nn.shapes.memory import (MemoryRequest, MemoryUsageError, estimate_memory,
                                  largest_batch, measure_saved_bytes, optimizer_bytes,
                                  parse_bytes)
from tui_nn.shapes.trace import meta_copy
from tui_nn.zoo.registry import MODELS

TOLERANCE = 0.10
LLAMA = Path(__file__).resolve().parents[1] / "benchmarks" / "llama70b.py"


def _predicted(model: nn.Module, shapes: list, dtypes: list, batch: int) -> int:
    estimate, result = estimate_memory(meta_copy(model), shapes, dtypes,
                                       MemoryRequest(batch_size=batch, budget=None))
    assert estimate is not None, result.diagnosis
    return estimate.activations


def _real_inputs(shapes: list, dtypes: list) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(s, generator=g) if d.is_floating_point else
            torch.randint(0, 4, s, generator=g) for s, d in zip(shapes, dtypes)]


def _check(model: nn.Module, shapes: list, dtypes: list) -> float:
    torch.manual_seed(0)
    real = measure_saved_bytes(model, _real_inputs(shapes, dtypes))
    predicted = _predicted(model, shapes, dtypes, shapes[0][0])
    assert real > 0
    error = abs(predicted - real) / real
    assert error <= TOLERANCE, f"predicted {predicted:,} B, autograd saved {real:,} B"
    return error


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_activations_match_what_autograd_saves(name):
    spec = MODELS[name]
    model = spec.build()
    # CPU LSTMs run oneDNN's fused layer, which saves a workspace (2.0× the bytes here); the
    # estimate follows torch's own per-step kernels, which the comparison then runs too.
    # allow_tf32=None: leave oneDNN's TF32 flag alone (setting it warns on every non-XPU torch).
    with torch.backends.mkldnn.flags(enabled=name != "lstm", allow_tf32=None):
        _check(model, [(8, *spec.input_shape)], [spec.input_dtype])


# Conv nets and a ViT at batch 8; small inputs where the model allows (the ViT needs 224).
TORCHVISION = [("resnet18", 64), ("mobilenet_v3_small", 64), ("efficientnet_b0", 64),
               ("convnext_tiny", 64), ("densenet121", 64), ("vit_b_16", 224)]


@pytest.mark.parametrize("name,size", TORCHVISION)
def test_torchvision_activations_match_what_autograd_saves(name, size):
    model = getattr(torchvision.models, name)(weights=None)
    _check(model, [(8, 3, size, size)], [torch.float32])


def test_attention_saves_what_the_fused_kernel_saves():
    """The meta device's math attention would save the B×H×L×S matrix: the estimate must not."""
    layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
    _check(layer, [(8, 128, 64)], [torch.float32])


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_grads_and_optimizer_state_are_exact(name):
    from tui_nn.engine.config import TrainConfig
    from tui_nn.engine.optim import build_optimizer

    model = MODELS["lenet"].build()
    model.fc1.weight.requires_grad_(False)  # frozen: no grad, no state
    optimizer = build_optimizer(model, TrainConfig(model="lenet", optimizer=name, lr=0.01))
    model(torch.randn(2, 1, 32, 32)).sum().backward()
    optimizer.step()
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values()
                for t in s.values() if isinstance(t, torch.Tensor))
    grads = sum(p.grad.numel() * p.grad.element_size()
                for p in model.parameters() if p.grad is not None)
    result = inspect_model(model, "1x32x32", memory=MemoryRequest(optimizer=name))
    assert result.memory.optimizer_state == state == optimizer_bytes(model, name)
    assert result.memory.grads == grads


def test_largest_batch_and_budget():
    assert largest_batch(fixed=100, activations=80, batch_size=8, budget=200) == 10
    assert largest_batch(fixed=300, activations=80, batch_size=8, budget=200) == 0
    assert parse_bytes("80GiB") == 80 * 2**30 and parse_bytes("24 GB") == 24 * 10**9
    with pytest.raises(MemoryUsageError):
        parse_bytes("lots")
    with pytest.raises(MemoryUsageError):
        MemoryRequest(optimizer="lion")


def test_amp_shrinks_the_activations():
    full = inspect_model("cnn", "1x28x28", memory=MemoryRequest(batch_size=64)).memory
    half = inspect_model("cnn", "1x28x28",
                         memory=MemoryRequest(batch_size=64, amp="bf16")).memory
    # conv inputs and outputs in bfloat16: about half, plus the weights' bf16 copies
    assert 0.4 * full.activations < half.activations < 0.75 * full.activations
    assert half.params == full.params and half.grads == full.grads
    # conv1, conv2 and fc's weights in bfloat16, kept for backward (biases are not needed)
    assert half.amp_weight_copies == 2 * (10 * 25 + 20 * 10 * 25 + 10 * 320)
    assert full.amp_weight_copies == 0


def test_cli_memory_section_and_json():
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", "cnn", "--batch-size", "64", "--optimizer", "adam",
                                 "--device-memory", "1GiB"])
    assert result.exit_code == 0, result.output
    assert "Training memory:" in result.stdout and "Saved (train)" in result.stdout
    assert "largest batch that fits" in result.stdout
    data = json.loads(runner.invoke(app, ["inspect", "cnn", "-b", "64", "-o", "adam",
                                          "--device-memory", "1GiB", "--json"]).stdout)
    memory = data["memory"]
    parts = memory["params"] + memory["grads"] + memory["optimizer"] + memory["activations"]
    assert memory["total"] == parts and memory["optimizer"] == 2 * memory["params"] + 4 * 6  # + a step per tensor
    assert memory["batch_size"] == 64 and memory["max_batch"] > 64
    assert sum(r["saved_bytes"] for r in data["rows"] if r["depth"] == 0) == \
        memory["activations"]
    bad = runner.invoke(app, ["inspect", "cnn", "--optimizer", "lion"])
    said = " ".join(bad.output.replace("│", " ").split())  # a typed choice: Typer refuses it
    assert bad.exit_code == 2 and "'lion' is not one of 'sgd'" in said


# Peak RSS from VmHWM: ru_maxrss of a child starts from the parent's at fork (pytest's is big).
SEVENTY_B = f"""
import re, runpy, torch
from tui_nn.shapes import inspect_model
from tui_nn.shapes.memory import MemoryRequest
from tui_nn.zoo.building import building_on
Llama70B = runpy.run_path({str(LLAMA)!r})["Llama70B"]
with building_on("meta"):
    model = Llama70B()
result = inspect_model(model, "1x512x8192", memory=MemoryRequest(
    batch_size=1, optimizer="adamw", amp="bf16", budget=80 * 2**30))
m = result.memory
hwm = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
print(m.params, m.grads, m.optimizer_state, m.activations, m.max_batch, int(hwm) * 1024)
"""


def test_70b_estimate_on_meta_stays_under_2gb_rss():
    out = subprocess.run([sys.executable, "-c", SEVENTY_B], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    params, grads, state, activations, max_batch, rss = map(int, out.stdout.split())
    assert params == grads > 250 * 2**30  # 69.5 B float32 parameters
    assert state == 2 * params + 4 * (80 * 9 + 2)  # 2 moments + a float32 step per tensor
    assert activations > 0 and max_batch == 0  # 1 TiB of weights and state: nothing fits
    assert rss < 2 * 2**30
