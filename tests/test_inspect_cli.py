"""`tui-nn inspect`: plain text when piped, JSON with --json, rich on a terminal; exit codes
0 (ok) / 1 (shape mismatch) / 2 (usage error), one line per error, traceback only with --debug."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tui_nn.cli import app
from tui_nn.commands.inspect_cmd import run_inspect

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["inspect", *args])


def test_lenet_at_28_exits_1_with_the_diagnosis():
    result = invoke("lenet", "--input", "1x28x28")
    assert result.exit_code == 1
    out = result.stdout
    assert "lenet  input 1×1×28×28 float32: shape mismatch" in out
    assert ("fc1 (Linear): Linear expects 400 features but gets 16 × 4 × 4 = 256" in out)
    assert "fix: use nn.Linear(256, 120), or feed 1×32×32 input" in out
    assert "⌊(28 + 0 − 4 − 1)/1⌋ + 1 = 24" in out
    assert "\x1b[" not in out  # piped: no colour codes
    assert "Traceback" not in out


def test_cnn_exits_0_and_shows_the_320():
    result = invoke("cnn")
    assert result.exit_code == 0, result.output
    assert "fc  Linear(320) ← 20 × 4 × 4 = 320 ✓" in result.stdout
    assert "1×28×28 … 1×31×31" in result.stdout  # the solver's sizes that pass


def test_plain_table_has_one_line_per_row():
    result = invoke("cnn", "--depth", "1")
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("Layer (path)"))
    table = lines[header + 2:lines.index("", header)]
    assert [line.split()[0] for line in table] == ["BasicCNN", "conv1", "pooling", "conv2",
                                                   "pooling", "view", "fc"]
    assert "8,490" in table[0] and "467.2K" in table[0]


def test_json_has_rows_totals_checks_and_diagnosis():
    result = invoke("lenet", "-i", "1x28x28", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["diagnosis"]["text"] == ("Linear expects 400 features but gets 16 × 4 × 4 = 256: "
                                         "use nn.Linear(256, 120), or feed 1×32×32 input")
    assert data["checks"][0]["ok"] is False
    conv1 = next(r for r in data["rows"] if r["path"] == "conv1")
    assert conv1["output_shapes"] == [[1, 6, 24, 24]] and conv1["params_trainable"] == 156
    assert conv1["arithmetic"][0].endswith("⌊(28 + 0 − 4 − 1)/1⌋ + 1 = 24")
    assert data["totals"]["params"] == 61706
    assert data["solver"]["working"] == [32, 33, 34, 35]


def test_json_depth_filters_rows():
    data = json.loads(invoke("resnet", "--json", "--depth", "1").stdout)
    assert {r["depth"] for r in data["rows"]} == {0, 1}


def test_several_inputs_and_dtype():
    result = invoke("rnn", "--input", "1x5", "--dtype", "int64", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["inputs"] == [{"shape": [1, 5], "dtype": "int64"}]
    bad = invoke("rnn", "--input", "1x5", "--dtype", "float32")
    assert bad.exit_code == 1 and "Embedding expects integer token ids" in bad.stdout


@pytest.mark.parametrize("args,message", [
    (["nope"], "error: unknown model 'nope'"),
    (["cnn", "-i", "1x2.5"], "error: bad input shape '1x2.5'"),
    (["cnn", "--dtype", "int65"], "error: unknown dtype 'int65'"),
    (["cnn", "--depth", "-1"], "error: --depth must be ≥ 0"),
    (["missing/model.py:Net"], "error: model file not found: missing/model.py"),
    (["torchvision.models:resnet19"], "error: 'torchvision.models' has no 'resnet19'"),
    (["torchvision.models:resnet18(weights=None, nope=1)"],
     "error: resnet18(weights=None, nope=1) raised TypeError"),
    (["no_such_pkg:Net"], "error: cannot import 'no_such_pkg'"),
])
def test_usage_errors_exit_2_with_one_line(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert result.stdout == ""


def test_file_errors(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("class Net(:\n")
    result = invoke(f"{broken}:Net")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {broken}:1: syntax error: invalid syntax"
    raising = tmp_path / "raising.py"
    raising.write_text("from torch import nn\nclass Net(nn.Module):\n    def __init__(self):\n"
                       "        raise RuntimeError('needs a config')\n")
    result = invoke(f"{raising}:Net")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: Net() raised RuntimeError: needs a config"


def test_debug_shows_the_traceback(tmp_path):
    raising = tmp_path / "raising.py"
    raising.write_text("def build():\n    raise RuntimeError('boom')\n")
    quiet = invoke(f"{raising}:build")
    loud = invoke(f"{raising}:build", "--debug")
    assert "Traceback" not in quiet.stderr and "Traceback" in loud.stderr
    assert quiet.exit_code == loud.exit_code == 2


def test_factory_without_default_input_asks_for_one(tmp_path):
    path = tmp_path / "net.py"
    path.write_text("from torch import nn\ndef build():\n    return nn.Sequential(nn.ReLU())\n")
    result = invoke(f"{path}:build")
    assert result.exit_code == 2
    # Nothing tells the channels: the example must not claim a count (issue 14: it said 3).
    assert "has no default input shape and it has no layer with weights to tell what it " \
           "takes: give one, e.g. --input 1x28x28" in result.stderr
    assert "3x224x224" not in result.stderr and "Traceback" not in result.stderr


def test_user_file_without_input_is_inspected_at_the_size_its_first_layer_fits(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(
        "import torch.nn.functional as F\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv1 = nn.Conv2d(1, 10, 5)\n"
        "        self.conv2 = nn.Conv2d(10, 20, 5)\n"
        "        self.fc = nn.Linear(320, 10)\n"
        "    def forward(self, x):\n"
        "        x = F.max_pool2d(self.conv1(x), 2)\n"
        "        x = F.max_pool2d(self.conv2(x), 2)\n"
        "        return self.fc(x.view(x.size(0), -1))\n")
    result = invoke(f"{path}:Net")
    assert result.exit_code == 0, result.output
    assert "input 1×1×28×28 float32: ok" in result.stdout
    assert ("assumed 1×28×28: first layer (Conv2d) takes 1 channel; smallest size that fits: "
            "28") in result.stdout


def test_channels_last_input_gets_did_you_mean_and_the_sizes_that_pass():
    result = invoke("cnn", "--input", "28x28x1")
    assert result.exit_code == 1
    assert "did you mean 1x28x28?" in result.stdout
    assert "feed 1×28×1" not in result.stdout
    sizes = result.stdout.split("Input sizes that pass:")[1].splitlines()[1]
    assert "none" not in sizes and sizes.strip().startswith("1×28×28")
    assert invoke("cnn", "--input", "1x28x28").exit_code == 0  # the suggestion passes


def test_user_file_end_to_end(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(
        "import torch\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, classes=10):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3, padding=1)\n"
        "        self.pool = nn.MaxPool2d(2)\n"
        "        self.fc = nn.Linear(8 * 16 * 16, classes)\n"
        "    def forward(self, x):\n"
        "        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))\n")
    ok = invoke(f"{path}:Net(classes=4)", "-i", "3x32x32")
    assert ok.exit_code == 0, ok.output
    assert "Linear(2048) ← 8 × 16 × 16 = 2048 ✓" in ok.stdout
    bad = invoke(f"{path}:Net", "-i", "3x28x28")
    assert bad.exit_code == 1
    assert "Linear expects 2048 features but gets 8 × 14 × 14 = 1568" in bad.stdout
    assert "feed 3×32×32 input" in bad.stdout


def test_rich_output_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    code = run_inspect("lenet", ["1x28x28"], None, False, None, False)
    out = capsys.readouterr().out
    assert code == 1
    assert "┃" in out or "│" in out  # a rich table, not the plain layout
    assert "Linear expects 400 features but gets 16 × 4 × 4 = 256" in out


def test_inspect_command_module_does_not_import_torch():
    code = ("import sys; import tui_nn.commands.inspect_cmd; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_collector_is_left_alone_when_the_cli_runs_inside_another_program():
    """The CLI freezes torch's objects out of the cyclic collector only as its own process
    (`main()`); a program calling the app (a test runner, a notebook) keeps collecting."""
    import gc

    frozen = gc.get_freeze_count()
    result = runner.invoke(app, ["inspect", "cnn", "--json"])
    assert result.exit_code == 0, result.output
    # Nothing new frozen (frozen objects other tests left may be freed meanwhile: <=).
    assert gc.get_freeze_count() <= frozen


def test_a_bad_shape_is_refused_before_torch_loads():
    """The shape strings are checked first: `tui_nn.shapes.parse` must not pull in torch
    through the package (its `__init__` loads the rest on first use)."""
    code = ("import sys\n"
            "from tui_nn.commands.inspect_cmd import run_inspect\n"
            "assert run_inspect('cnn', ['1xaxb'], None, True, None, False) == 2\n"
            "from tui_nn.shapes import Inspection, parse_shape\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "from tui_nn.shapes import inspect_model\n"
            "assert 'torch' in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "error: " in result.stderr


def test_torchs_import_runs_without_collections_in_the_clis_own_process():
    """Every generation-2 collection during torch's import walks its few hundred thousand
    objects; the CLI's own process imports with the collector off, then freezes what the
    import left and turns the collector back on."""
    code = ("import gc, sys\n"
            "passes = []\n"
            "gc.callbacks.append(lambda phase, info: phase == 'start'"
            " and info['generation'] == 2 and passes.append(info))\n"
            "from tui_nn.commands.inspect_cmd import run_inspect\n"
            "assert run_inspect('cnn', ['1x28x28'], None, True, None, False,"
            " freeze_imports=True) == 0\n"
            "assert not passes, passes\n"
            "assert gc.isenabled() and gc.get_freeze_count() > 100_000\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


NOISY_MODEL = """
import atexit, json, sys
from torch import nn
atexit.register(lambda: sys.stderr.write("atexit ran\\n"))

class _Noisy:
    def __del__(self):
        sys.stderr.write("teardown ran\\n")

json.noisy = _Noisy()  # freed when the interpreter's teardown clears the json module

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""


def test_the_clis_own_process_ends_without_the_interpreters_teardown(tmp_path):
    """The output is complete and the exit code kept; atexit handlers run; the teardown
    (freeing every module's objects one by one) is skipped."""
    path = tmp_path / "noisy.py"
    path.write_text(NOISY_MODEL)
    for shape, code in (("1x4", 0), ("1x5", 1)):
        result = subprocess.run([sys.executable, "-m", "tui_nn", "inspect", f"{path}:Net",
                                 "--input", shape, "--json"], capture_output=True, text=True)
        assert result.returncode == code, result.stderr[-2000:]
        assert json.loads(result.stdout)["ok"] is (code == 0)
        assert "atexit ran" in result.stderr
        assert "teardown ran" not in result.stderr


def test_json_lists_one_row_a_line():
    """Each layer's row is one line (written by json's C encoder: the indenting one is
    Python); the whole stays one JSON object, the rest of it indented."""
    result = runner.invoke(app, ["inspect", "cnn", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    row_lines = [line for line in result.stdout.splitlines() if line.startswith('    {"index": ')]
    assert [json.loads(line.rstrip(",")) for line in row_lines] == data["rows"]
    assert '\n  "totals": {\n    "params": ' in result.stdout
