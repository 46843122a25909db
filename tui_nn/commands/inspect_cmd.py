"""`tui-nn inspect SOURCE`: the shape inspector on the command line.

Exit codes: 0 the model runs and every check passes; 1 a shape mismatch (the diagnosis is
printed); 2 a usage error (bad source, bad shape string, syntax error in the file, class
not found, constructor raising). Errors are one line on stderr; `--debug` adds the
traceback.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import traceback
from dataclasses import dataclass, field
from typing import Iterator

from tui_nn.textsafe import error, first_line

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2

# Solving input sizes after a successful trace is a bonus: only when it is quick.
SOLVER_BUDGET_S = 2.0


@dataclass
class MemoryOptions:
    """The memory estimate's options as typed; all None: no estimate."""

    batch_size: int | None = None
    optimizer: str | None = None
    amp: str | None = None
    device_memory: str | None = None
    measure: bool = False  # also measure one real training step (`--measure`)

    @property
    def wanted(self) -> bool:
        return self.measure or any(v is not None for v in (self.batch_size, self.optimizer,
                                                           self.amp, self.device_memory))


@dataclass
class DiffOptions:
    """`--diff B`: the second source, and its own `--diff-input` (else A's `--input`)."""

    source: str
    inputs: list[str] = field(default_factory=list)


def run_inspect(source: str, inputs: list[str], depth: int | None, as_json: bool,
                dtype: str | None, debug: bool, memory: MemoryOptions | None = None,
                freeze_imports: bool = False, diff: DiffOptions | None = None,
                dataset: str | None = None) -> int:
    """Inspect `source`, print the result, return the exit code. freeze_imports: the process
    is ours alone (the CLI), so the import's objects may leave the cyclic collector. dataset:
    the input shape (and an integer dtype) from that dataset's first sample."""
    from tui_nn.shapes.parse import ShapeParseError, normalize_dtype, parse_inputs

    try:
        if dataset is not None:
            inputs, dtype = _dataset_input(dataset, inputs, dtype)
        if depth is not None and depth < 0:
            raise ShapeParseError(f"--depth must be ≥ 0, got {depth}")
        specs = parse_inputs(inputs) if inputs else None  # fail on a bad shape before torch loads
        if diff is not None:
            diff_specs = parse_inputs(diff.inputs) if diff.inputs else specs
            if memory is not None and memory.measure:
                raise ShapeParseError("--measure takes one model: leave out --diff")
        if dtype is not None:
            normalize_dtype(dtype)
    except ShapeParseError as exc:
        return _failed(exc, debug, exc, EXIT_USAGE)
    with _uncollected_imports(freeze_imports):
        from tui_nn.shapes.api import InspectUsageError, inspect_model
        from tui_nn.shapes.memory import MemoryUsageError
        from tui_nn.zoo.sources import SourceError
    if diff is not None:
        return _run_diff(source, specs, diff.source, diff_specs, depth, as_json, dtype, debug,
                         memory)

    from tui_nn.engine.stop_signals import marked_interrupts, raised_by_user_code
    measure_failed = False
    with marked_interrupts():  # a plain KeyboardInterrupt meanwhile is the model's
        try:
            request = _memory_request(source, memory) if memory and memory.wanted else None
            result = inspect_model(source, specs, depth=depth, dtype=dtype, solve=True,
                                   solver_budget_s=SOLVER_BUDGET_S, memory=request, fits=True)
            if memory is not None and memory.measure:
                measure_failed = _measure(source, result)
        except (SourceError, ShapeParseError, InspectUsageError, MemoryUsageError) as exc:
            return _failed(exc, debug, exc, EXIT_USAGE)
        except (SystemExit, KeyboardInterrupt) as exc:
            if not raised_by_user_code(exc):
                raise
            return _failed(exc, debug, f"the code of {source} raised {exc!r} while it was "
                           "inspected: an error of that code, not a way to end the inspection",
                           EXIT_MISMATCH)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: still one line unless --debug
            return _unexpected(exc, source, debug)

    from tui_nn.commands.inspect_render import render_json, render_plain, render_rich
    _print(result, as_json, render_json, render_plain, render_rich)
    return EXIT_OK if result.ok and not measure_failed else EXIT_MISMATCH


@contextlib.contextmanager
def _uncollected_imports(own_process: bool) -> Iterator[None]:
    """torch's import makes a few hundred thousand objects that live as long as the process.
    Every generation-2 collection walks all of them, and the import itself triggers dozens:
    with the collector off while they are made and the survivors frozen out of its reach
    afterwards, none of that walking happens. Only in our own process (the CLI's)."""
    if not own_process:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _print(value, as_json: bool, as_json_text, as_plain_text, on_console) -> None:
    """JSON when asked; rich tables on a terminal; plain text into a pipe or a file."""
    if as_json:
        sys.stdout.write(as_json_text(value) + "\n")
    elif sys.stdout.isatty():
        from rich.console import Console

        on_console(value, Console())
    else:
        sys.stdout.write(as_plain_text(value))


def _run_diff(source: str, specs, other: str, other_specs, depth: int | None, as_json: bool,
              dtype: str | None, debug: bool, memory: MemoryOptions | None) -> int:
    """`inspect A --diff B`: both inspected alike, then aligned row by row."""
    from tui_nn.shapes.api import InspectUsageError, inspect_model
    from tui_nn.shapes.diff import diff_inspections
    from tui_nn.shapes.memory import MemoryUsageError
    from tui_nn.shapes.parse import ShapeParseError
    from tui_nn.zoo.sources import SourceError

    try:
        sides = []
        for name, shapes in ((source, specs), (other, other_specs)):
            request = _memory_request(name, memory) if memory and memory.wanted else None
            sides.append(inspect_model(name, shapes, depth=depth, dtype=dtype, memory=request))
    except (SourceError, ShapeParseError, InspectUsageError, MemoryUsageError) as exc:
        return _failed(exc, debug, exc, EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - a bug of ours: still one line unless --debug
        return _unexpected(exc, f"{source} --diff {other}", debug)

    from tui_nn.commands.inspect_diff_render import (render_diff_json, render_diff_plain,
                                                     render_diff_rich)

    _print(diff_inspections(*sides), as_json, render_diff_json, render_diff_plain,
           render_diff_rich)
    return EXIT_OK if all(s.ok for s in sides) else EXIT_MISMATCH


def _unexpected(exc: Exception, what: str, debug: bool) -> int:
    return _failed(exc, debug, f"inspecting {what} failed unexpectedly: {type(exc).__name__}: "
                   f"{exc} (run with --debug for the traceback)", EXIT_MISMATCH)


def _memory_request(source: str, options: MemoryOptions):
    """Defaults: a zoo model's own batch size and optimizer, else the input's batch and Adam."""
    from tui_nn.shapes.memory import MemoryRequest, parse_bytes
    from tui_nn.zoo.registry import MODELS

    spec = MODELS.get(source.strip())
    batch, optimizer = options.batch_size, options.optimizer
    if spec is not None:
        batch = batch if batch is not None else spec.defaults.batch_size
        optimizer = optimizer or spec.defaults.optimizer
    budget = parse_bytes(options.device_memory) if options.device_memory else None
    return MemoryRequest(batch_size=batch, optimizer=(optimizer or "adam").lower(),
                         amp=(options.amp or "off").lower(), budget=budget)


def _measure(source: str, result) -> bool:
    """The real step beside the prediction; refused (MeasureRefused) when it would not fit.
    Without an estimate (the training forward failed) there is nothing to measure against.
    True when the step failed: the prediction is still printed, and the exit is 1."""
    import torch

    from tui_nn.engine.stop_signals import raised_by_user_code
    from tui_nn.shapes.measure import MeasureRefused, measure

    if result.memory is None:
        return False
    dtypes = [getattr(torch, name) for name in result.input_dtypes]
    try:
        result.memory.measured = measure(source, result.memory, result.input_shapes, dtypes)
    except MeasureRefused:
        raise
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # the model's code, or an OOM
        if not isinstance(exc, Exception) and not raised_by_user_code(exc):
            raise
        result.notes.append("--measure: the real training step failed: "
                            + first_line(exc, with_type=True))
        return True
    return False


def _dataset_input(dataset: str, inputs: list[str], dtype: str | None
                   ) -> tuple[list[str], str | None]:
    """--dataset as --input (and --dtype int64 for integer samples); ShapeParseError (a usage
    error) for a dataset that cannot give a sample, or one given beside --input."""
    from tui_nn.shapes.parse import ShapeParseError
    if inputs:
        raise ShapeParseError("--dataset gives the input shape: leave out --input")
    from tui_nn.data.base import DataError
    from tui_nn.engine.loader import sample_of
    try:
        shape, sample_dtype = sample_of(dataset)
    except DataError as e:
        raise ShapeParseError(str(e)) from None
    if dtype is None and not sample_dtype.is_floating_point:
        dtype = str(sample_dtype).removeprefix("torch.")
    return ["x".join(map(str, shape))], dtype


def _failed(exc: BaseException, debug: bool, message: object, code: int) -> int:
    """One line on stderr, made inert (a model's own error text can hold anything), the
    traceback too with --debug; returns the exit code."""
    if debug:
        traceback.print_exception(exc)
    error(message)
    return code


__all__ = ["run_inspect", "DiffOptions", "EXIT_OK", "EXIT_MISMATCH", "EXIT_USAGE"]
