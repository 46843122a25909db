"""Layering: the shape inspector and the zoo never import UI libraries (checked in a fresh
interpreter, after really running an inspection, so lazy imports are caught too)."""

from __future__ import annotations

import subprocess
import sys

UI_LIBRARIES = ("textual", "typer", "rich", "plotext", "textual_plotext")

SCRIPT = f"""
import sys
from tui_nn.shapes import inspect_model
from tui_nn.zoo.sources import load_model
inspect_model("lenet", "1x28x28")  # a failure: the diagnosis and the solver run too
inspect_model("inception")
load_model("torchvision.models:resnet18")
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {UI_LIBRARIES!r})
assert not leaked, leaked
"""


def test_shapes_and_zoo_import_no_ui_library():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
