"""'What do I change so it fits?': per-layer saved bytes (top 5), and the estimate redone
with bf16 autocast, activation checkpointing (predicted, checked against torch.utils.checkpoint
on the CPU) and plain SGD."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.shapes.fits import checkpoint_blocks, checkpointed_activations, measure_checkpointed
from tui_nn.shapes.memory import MemoryRequest, estimate_memory
from tui_nn.shapes.trace import meta_copy

runner = CliRunner()


def _predicted_and_measured(model: nn.Module, x: torch.Tensor) -> tuple[int, int, list[str]]:
    estimate, trained = estimate_memory(meta_copy(model), [tuple(x.shape)], [x.dtype],
                                        MemoryRequest())
    blocks = checkpoint_blocks(trained.rows)
    predicted = checkpointed_activations(estimate.activations, blocks)
    paths = [b.path for b in blocks]
    return predicted, measure_checkpointed(model, [x], paths), paths


def test_checkpointing_resnet18_is_predicted_within_10_percent_of_the_cpu():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    predicted, measured, paths = _predicted_and_measured(model, torch.randn(2, 3, 64, 64))
    assert paths == [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert abs(measured - predicted) <= 0.1 * measured, (predicted, measured)


def test_checkpointing_a_small_transformer_is_predicted_within_10_percent():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    predicted, measured, paths = _predicted_and_measured(model, torch.randn(4, 16, 32))
    assert paths == ["layers.0", "layers.1", "layers.2"]
    assert abs(measured - predicted) <= 0.1 * measured, (predicted, measured)


def test_cli_what_fits_and_the_top_five():
    result = runner.invoke(app, ["inspect", "resnet", "--batch-size", "64",
                                 "--device-memory", "64MiB"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    top = out.split("Saves the most for backward (batch 64):\n")[1].split("\n\n")[0]
    assert len(top.splitlines()) == 5
    fits = out.split("What fits:\n")[1].split("\n\n")[0].splitlines()
    labels = [line.split("  ")[1].strip() for line in fits[1:5]]
    assert labels == ["as is", "bf16 autocast", "checkpoint 2 blocks",
                      "SGD instead of momentum"]  # the zoo resnet trains with momentum
    assert "checkpoint 2 blocks: torch.utils.checkpoint on rblock1 … rblock2" in out


def test_json_fits_improve_on_as_is():
    result = runner.invoke(app, ["inspect", "torchvision.models:resnet18", "-i", "3x64x64",
                                 "--batch-size", "32", "--device-memory", "1GiB", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    fits = {f["label"]: f for f in data["fits"]}
    as_is = fits["as is"]
    assert as_is["total"] == data["memory"]["total"]
    assert as_is["max_batch"] == data["memory"]["max_batch"]
    for label in ("bf16 autocast", "checkpoint 8 blocks", "SGD instead of adam"):
        assert fits[label]["max_batch"] > as_is["max_batch"], label
    assert fits["SGD instead of adam"]["total"] == as_is["total"] - data["memory"]["optimizer"]
    saved = [r["saved_bytes"] for r in data["rows"] if r["path"] == "layer1"]
    assert saved and saved[0] > 0  # the per-layer column
