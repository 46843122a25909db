"""`inspect --measure` (issue 17): the prediction beside one real training step on CPU, the
JSON shape, and the refusal that keeps a model too big for the machine from being built."""

from __future__ import annotations

import json

import psutil
import pytest
from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.shapes.measure import MeasureRefused, measure, refuse_if_too_big
from tui_nn.shapes.memory import MemoryEstimate

runner = CliRunner()

BIG = '''
from torch import nn

class Big(nn.Module):
    """Four Linear(100000, 100000): 160 GB of float32 weights."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(100000, 100000) for _ in range(4)])

    def forward(self, x):
        return self.layers(x)
'''


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, ["inspect", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_measured_activations_equal_the_prediction_on_cpu():
    memory = _json(["cnn", "--batch-size", "8", "--measure"])["memory"]
    measured = memory["measured"]
    assert set(measured) == {"device", "activations", "peak_allocated"}
    assert measured["device"] == "cpu"
    assert measured["peak_allocated"] is None  # CUDA only
    assert measured["activations"] == memory["activations"] > 0


def test_measured_grows_with_the_batch():
    small = _json(["mlp", "--batch-size", "4", "--measure"])["memory"]["measured"]
    large = _json(["mlp", "--batch-size", "32", "--measure"])["memory"]["measured"]
    assert large["activations"] > small["activations"]


def test_without_measure_the_json_says_null():
    assert _json(["cnn", "--batch-size", "8"])["memory"]["measured"] is None


def test_plain_output_shows_predicted_beside_measured():
    result = runner.invoke(app, ["inspect", "cnn", "--batch-size", "8", "--measure"])
    assert result.exit_code == 0, result.output
    assert "measured on cpu (one training step at batch 8):" in result.stdout
    line = next(l for l in result.stdout.splitlines()
                if l.strip().startswith("activations") and "1.000" in l)
    assert line.split()[1:5] == ["409.5", "KiB", "409.5", "KiB"]


def test_a_model_too_big_for_the_machine_is_refused_before_it_is_built(tmp_path):
    path = tmp_path / "big.py"
    path.write_text(BIG)
    before = psutil.Process().memory_info().rss
    result = runner.invoke(app, ["inspect", f"{path}:Big", "--input", "1x100000",
                                 "--batch-size", "1", "--measure"])
    assert result.exit_code == 2, result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: not measuring:")
    assert "half of the available RAM" in err and "Traceback" not in result.output
    # Built for real, the weights alone would be 160 GB: nothing near that was allocated.
    assert psutil.Process().memory_info().rss - before < 2 * 2**30


def _estimate(params: int, activations: int) -> MemoryEstimate:
    return MemoryEstimate(batch_size=8, optimizer="sgd", amp="off", params=params,
                          grads=params, optimizer_state=0, activations=activations)


def test_refusal_counts_params_grads_and_activations():
    import torch

    cpu = torch.device("cpu")
    refuse_if_too_big(_estimate(100, 100), cpu, limit=300)  # 300 fits in 300
    with pytest.raises(MeasureRefused, match="batch 8"):
        refuse_if_too_big(_estimate(100, 101), cpu, limit=300)


def test_measure_never_calls_the_builder_when_refused():
    import torch

    built = []
    with pytest.raises(MeasureRefused):
        measure(lambda device: built.append(device), _estimate(10**6, 10**6), [(1, 4)],
                [torch.float32], limit=1000)
    assert built == []


def test_the_70b_decoder_on_meta_is_refused_not_built():
    from pathlib import Path

    llama = Path(__file__).resolve().parents[1] / "benchmarks" / "llama70b.py"
    before = psutil.Process().memory_info().rss
    result = runner.invoke(app, ["inspect", f"{llama}:Llama70B", "--input", "1x512x8192",
                                 "--batch-size", "1", "--measure"])
    assert result.exit_code == 2, result.output
    assert "weights and their grads alone" in result.stderr and result.stdout == ""
    assert psutil.Process().memory_info().rss - before < 2 * 2**30


def test_a_real_step_that_fails_leaves_the_prediction_and_a_note(tmp_path):
    """Meta cannot see values: a forward that checks them passes the trace, fails for real."""
    path = tmp_path / "picky.py"
    path.write_text('''
import torch
from torch import nn

class Picky(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        if not x.is_meta and x.abs().max() > 0:
            raise ValueError("only zeros, please")
        return self.fc(x)
''')
    result = runner.invoke(app, ["inspect", f"{path}:Picky", "--input", "1x4", "--batch-size",
                                 "8", "--measure", "--json"])
    assert result.exit_code == 1, result.output  # the measurement asked for failed (issue 26.7)
    data = json.loads(result.stdout)  # the prediction is still printed
    assert data["memory"]["measured"] is None and data["memory"]["activations"] > 0
    assert any(n.startswith("--measure: the real training step failed: ValueError: only zeros")
               for n in data["notes"])
