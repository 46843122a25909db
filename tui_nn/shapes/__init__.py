"""Shape inspector: layer-by-layer traces on the meta device, conv/pool arithmetic with the
numbers filled in, flatten checks, diagnoses with fixes, and the input-size solver.

No UI imports here: tui_nn.commands and tui_nn.tui render these records.

    >>> from tui_nn.shapes import inspect_model
    >>> result = inspect_model("cnn", "1x28x28")
    >>> result.checks[0].text
    'Linear(320) ← 20 × 4 × 4 = 320 ✓'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui_nn.fmt import format_shape
    from tui_nn.shapes.api import InspectUsageError, inspect_model
    from tui_nn.shapes.arithmetic import module_formulas
    from tui_nn.shapes.parse import InputSpec, ShapeParseError, parse_inputs, parse_shape
    from tui_nn.shapes.records import (Diagnosis, FlattenCheck, Formula, Inspection, LayerRow,
                                       SolverResult, Totals)
    from tui_nn.shapes.solver import solve_input_size
    from tui_nn.shapes.trace import meta_copy

# Loaded on first use (PEP 562): `tui_nn.shapes.parse` and `.records` need no torch, and the
# CLI checks a shape string before torch's import (1-2 s) starts.
_HOMES = {
    "inspect_model": "api", "InspectUsageError": "api", "module_formulas": "arithmetic",
    "solve_input_size": "solver", "meta_copy": "trace", "format_shape": "tui_nn.fmt",
    **dict.fromkeys(("InputSpec", "ShapeParseError", "parse_inputs", "parse_shape"), "parse"),
    **dict.fromkeys(("Diagnosis", "FlattenCheck", "Formula", "Inspection", "LayerRow",
                     "SolverResult", "Totals"), "records"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = home if "." in home else f"{__name__}.{home}"
    return getattr(importlib.import_module(module), name)


__all__ = [
    "inspect_model", "solve_input_size", "meta_copy", "module_formulas",
    "parse_shape", "parse_inputs", "format_shape", "InputSpec",
    "Inspection", "LayerRow", "Formula", "FlattenCheck", "Diagnosis", "Totals", "SolverResult",
    "ShapeParseError", "InspectUsageError",
]
