"""`tui-nn inspect SOURCE`: the shape inspector on the command line.

Exit codes: 0 the model runs and every check passes; 1 a shape mismatch (the diagnosis is
printed); 2 a usage error (bad source, bad shape string, syntax error in the file, class
not found, constructor raising). Errors are one line on stderr; `--debug` adds the
traceback.
"""

from __future__ import annotations

import sys
import traceback

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2

# Solving input sizes after a successful trace is a bonus: only when it is quick.
SOLVER_BUDGET_S = 2.0


def run_inspect(source: str, inputs: list[str], depth: int | None, as_json: bool,
                dtype: str | None, debug: bool) -> int:
    """Inspect `source`, print the result, return the exit code."""
    from tui_nn.shapes.parse import ShapeParseError, normalize_dtype, parse_inputs

    try:
        if depth is not None and depth < 0:
            raise ShapeParseError(f"--depth must be ≥ 0, got {depth}")
        specs = parse_inputs(inputs) if inputs else None  # fail on a bad shape before torch loads
        if dtype is not None:
            normalize_dtype(dtype)
    except ShapeParseError as exc:
        return _usage_error(exc, debug)

    from tui_nn.shapes.api import InspectUsageError, inspect_model
    from tui_nn.zoo.sources import SourceError

    try:
        result = inspect_model(source, specs, depth=depth, dtype=dtype, solve=True,
                               solver_budget_s=SOLVER_BUDGET_S)
    except (SourceError, ShapeParseError, InspectUsageError) as exc:
        return _usage_error(exc, debug)
    except Exception as exc:  # noqa: BLE001 - a bug of ours: still one line unless --debug
        if debug:
            traceback.print_exc()
        from tui_nn.textsafe import clean
        print(f"error: inspecting {clean(source)} failed unexpectedly: {type(exc).__name__}: "
              f"{clean(exc)} "
              f"(run with --debug for the traceback)", file=sys.stderr)
        return EXIT_MISMATCH

    from tui_nn.report.inspect_render import render_json, render_plain, render_rich

    if as_json:
        sys.stdout.write(render_json(result) + "\n")
    elif sys.stdout.isatty():
        from rich.console import Console

        render_rich(result, Console())
    else:
        sys.stdout.write(render_plain(result))
    return EXIT_OK if result.ok else EXIT_MISMATCH


def _usage_error(exc: Exception, debug: bool) -> int:
    if debug:
        traceback.print_exception(exc)
    from tui_nn.textsafe import clean  # a model's own error text can hold anything
    print(f"error: {clean(exc)}", file=sys.stderr)
    return EXIT_USAGE


__all__ = ["run_inspect", "EXIT_OK", "EXIT_MISMATCH", "EXIT_USAGE"]
