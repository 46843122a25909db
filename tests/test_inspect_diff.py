"""`tui-nn inspect A --diff B`: rows aligned by a sequence alignment (an inserted block is
inserted, not every later row changed), the first output that differs, the arithmetic of
every Linear whose flattened input moved, totals side by side, JSON rows, 80 columns."""

from __future__ import annotations

import json
import textwrap

from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.shapes import inspect_model
from tui_nn.shapes.diff import CHANGED, INSERTED, REMOVED, SAME, diff_inspections

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["inspect", *args])


def test_cnn_vs_resnet_explains_the_320_and_the_512():
    diff = diff_inspections(inspect_model("cnn"), inspect_model("resnet"))
    status = {r.path: r.status for r in diff.rows}
    assert status["rblock1"] == status["rblock1.conv1"] == status["rblock2"] == INSERTED
    # Aligned after the inserted block: conv2 is paired with conv2, not shown as a new row.
    assert status["conv2"] == CHANGED and status["fc"] == CHANGED
    assert status["pooling → mp"] == CHANGED  # renamed MaxPool2d paired by type
    assert diff.first_output_change.path == "conv1"
    assert [f.text for f in diff.features] == ["320 = 20×4×4 → 512 = 32×4×4"]
    fc = next(r for r in diff.rows if r.path == "fc")
    assert fc.changed == ["params", "mult_adds"]  # output 1×10 on both sides


def test_cli_diff_plain_fits_80_columns():
    result = invoke("cnn", "--diff", "resnet")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "fc  320 = 20×4×4 → 512 = 32×4×4" in out
    assert "conv1  1×10×24×24 → 1×16×24×24" in out
    assert "+      rblock1.conv1" in out
    assert "144.0K→230.4K" in out  # conv1's mult-adds, A→B
    assert "flops" in out and "B − A" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "\x1b[" not in out


def test_cli_diff_json_has_the_aligned_rows():
    result = invoke("cnn", "--diff", "resnet", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["a"]["model"] == "cnn" and data["b"]["model"] == "resnet"
    assert data["counts"] == {SAME: 0, CHANGED: 7, INSERTED: 6, REMOVED: 0}
    conv1 = next(r for r in data["rows"] if r["path"] == "conv1")
    assert conv1["a"]["output_shapes"] == [[1, 10, 24, 24]]
    assert conv1["b"]["output_shapes"] == [[1, 16, 24, 24]]
    assert conv1["b"]["flops"] == 2 * conv1["b"]["mult_adds"]
    inserted = next(r for r in data["rows"] if r["path"] == "rblock1")
    assert inserted["a"] is None and inserted["status"] == INSERTED
    assert data["first_output_change"] == "conv1"
    assert data["features"][0]["text"] == "320 = 20×4×4 → 512 = 32×4×4"


_TWO = """
    from torch import nn

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 16)
            self.b = nn.Linear(16, 16)
            self.c = nn.Linear(16, 4)

        def forward(self, x):
            return self.c(self.b(self.a(x)))

    class Wider(Small):
        def __init__(self):
            super().__init__()
            self.extra = nn.Sequential(nn.Linear(16, 16), nn.ReLU())

        def forward(self, x):
            return self.c(self.b(self.extra(self.a(x))))
"""


def test_an_inserted_block_in_a_file_model_leaves_later_rows_the_same(tmp_path):
    path = tmp_path / "two.py"
    path.write_text(textwrap.dedent(_TWO))
    result = invoke(f"{path}:Small", "--diff", f"{path}:Wider", "--input", "8", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["path"]: r["status"] for r in json.loads(result.stdout)["rows"]}
    assert rows["extra"] == rows["extra.0"] == rows["extra.1"] == INSERTED
    assert rows["a"] == rows["b"] == rows["c"] == SAME


def test_each_side_gets_its_own_input(tmp_path):
    result = invoke("cnn", "--diff", "lenet", "--input", "1x28x28", "--diff-input", "1x32x32")
    assert result.exit_code == 0, result.output
    assert "B: lenet  input 1×1×32×32 float32: ok" in result.stdout


def test_a_bad_second_source_is_a_usage_error():
    result = invoke("cnn", "--diff", "nosuch")
    assert result.exit_code == 2
    assert "unknown model 'nosuch'" in result.output
    assert "Traceback" not in result.output


def test_measure_with_diff_is_a_usage_error():
    result = invoke("cnn", "--diff", "resnet", "--measure")
    assert result.exit_code == 2
    assert "--measure takes one model" in result.output


def test_rich_diff_on_a_terminal_draws_the_same_rows():
    from rich.console import Console

    from tui_nn.commands.inspect_diff_render import render_diff_rich

    console = Console(record=True, width=80, force_terminal=True)
    render_diff_rich(diff_inspections(inspect_model("cnn"), inspect_model("resnet")), console)
    text = console.export_text()
    assert "fc  320 = 20×4×4 → 512 = 32×4×4" in text
    assert "+      rblock1.conv1" in text


def test_diff_with_a_batch_size_compares_saved_bytes_and_totals():
    result = invoke("cnn", "--diff", "resnet", "--batch-size", "64", "--device-memory", "1GiB")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Saved" in out.splitlines()[3]
    assert "3.2M→6.4M" in out  # the roots' saved bytes, binary units
    assert "train total" in out and "largest batch" in out
    assert max(len(line) for line in out.splitlines()) <= 80
