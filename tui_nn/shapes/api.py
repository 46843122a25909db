"""`inspect_model`: load (or copy) a model onto meta, trace it, total it, explain what failed."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from typing import Any, Sequence

import torch
from torch import nn

from tui_nn.fmt import format_shape
from tui_nn.shapes.arithmetic import spatial_rank
from tui_nn.shapes.checks import name_the_layer
from tui_nn.shapes.fits import what_fits
from tui_nn.shapes.infer import guess_input, no_input_message
from tui_nn.shapes.memory import MemoryRequest, copy_saved_bytes, estimate_memory, param_bytes
from tui_nn.shapes.parse import (InputSpec, ShapeParseError, add_batch, normalize_dtype,
                                 parse_inputs)
from tui_nn.shapes.records import Diagnosis, FlattenCheck, Inspection, LayerRow, Totals
from tui_nn.shapes.solver import solve_input_size
from tui_nn.shapes.trace import (RESHAPE_LABELS, count_params, is_on_meta, make_inputs,
                                 meta_copy, trace)
from tui_nn.zoo.sources import LoadedModel, load_model


class InspectUsageError(ValueError):
    """The call cannot start: no input shape known, wrong number of dtypes, ..."""


ShapeLike = str | Sequence[int] | InputSpec

# The solver runs inside the diagnosis with a short budget: the answer must come quickly.
DIAGNOSIS_SOLVER_BUDGET_S = 3.0
# The fewest probes a useful solver scan makes (nearest sizes on either side and beyond).
SOLVER_MIN_PROBES = 16


def inspect_model(model_or_source: nn.Module | str | Any,
                  input_shapes: ShapeLike | Sequence[ShapeLike] | None = None, *,
                  depth: int | None = None, dtype: torch.dtype | str | None = None,
                  solve: bool = False, solver_budget_s: float = 5.0,
                  memory: MemoryRequest | None = None, fits: bool = False) -> Inspection:
    """Trace a model layer by layer on the meta device.

    model_or_source: an nn.Module (traced as a meta copy: its weights are never copied),
        a source string ('lenet', 'model.py:Net', 'torchvision.models:resnet18') or a
        `LoadedModel`.
    input_shapes: '1x28x28', (1, 28, 28), or a list of them for several inputs; the batch
        dimension is optional. None: the model's default (zoo models have one), else a
        guess from its first layer (said in `.notes`).
    depth: rows deeper than this are left out of `.rows` (all of them stay in `.all_rows`).
    dtype: input dtype for every input without its own (':int64' suffix); default float32,
        or the zoo's dtype, or int64 when the model starts with an Embedding.
    solve: also run the input-size solver when everything passes (it always runs when a
        failure could be fixed by another input size).
    memory: also estimate training memory (`.memory`, and every row's `saved_bytes`) from a
        training forward at the requested batch size; only when the first trace passes.
    fits: with `memory`, also what bf16 autocast, activation checkpointing and plain SGD
        would change (`.fits`: one more training trace, under bf16).
    """
    loaded = _loaded(model_or_source)
    notes: list[str] = list(loaded.notes)
    model = loaded.model
    has_tensors = any(True for _ in itertools.chain(model.parameters(), model.buffers()))
    if has_tensors and not is_on_meta(model):
        model = _meta_copy(model, loaded.name)

    if input_shapes is None and not loaded.default_input_shapes:
        loaded = _with_guessed_input(loaded, model, notes)
    specs = _input_specs(input_shapes, loaded)
    embedding_first = isinstance(_first_leaf(model), (nn.Embedding, nn.EmbeddingBag))
    dtypes = _input_dtypes(specs, dtype, loaded.dtype, embedding_first, notes)

    sample_ranks = _sample_ranks(loaded, model, len(specs))
    shapes = [add_batch(s.shape, r) for s, r in zip(specs, sample_ranks)]
    started = time.perf_counter()
    result = trace(model, make_inputs(shapes, dtypes))
    trace_s = time.perf_counter() - started
    notes.extend(result.notes)
    if result.diagnosis is not None:
        name_the_layer(result.diagnosis)
    if result.uncalled:
        notes.append(_uncalled_note(result.uncalled))

    inspection = Inspection(
        model_name=loaded.name, input_shapes=shapes, input_dtypes=[str(d)[6:] for d in dtypes],
        all_rows=result.rows, totals=_totals(model, result.rows, shapes, dtypes),
        checks=result.checks, diagnosis=result.diagnosis, depth=depth, notes=notes,
        uncalled=result.uncalled, not_counted=result.not_counted)

    if memory is not None and result.diagnosis is None:
        _add_memory(inspection, model, shapes, dtypes, memory, fits)
    # A bonus scan whose probes (each a trace like the one just done) cannot fit in the
    # budget is not started: a 70B decoder is traced once, not twice.
    quick = trace_s * SOLVER_MIN_PROBES < solver_budget_s
    _solve_sizes(inspection, model, dtypes, solve and quick, solver_budget_s)
    return inspection


def _meta_copy(model: nn.Module, name: str) -> nn.Module:
    try:
        return meta_copy(model)
    except Exception as exc:  # noqa: BLE001 - exotic modules may refuse deepcopy
        raise InspectUsageError(
            f"cannot make a meta copy of {name} ({type(exc).__name__}: {exc}): build "
            f"it on the meta device instead (with torch.device('meta'): model = ...)") from None


def _uncalled_note(uncalled: list[str]) -> str:
    # Only the outermost of each unused subtree: 'aux1', not also 'aux1.conv', 'aux1.fc1'.
    tops = [p for p in uncalled if not any(p.startswith(f"{q}.") for q in uncalled if q)]
    listed = ", ".join(tops[:6]) + (f" and {len(tops) - 6} more" if len(tops) > 6 else "")
    return f"never called in forward (their weights are counted): {listed}"


def _loaded(model_or_source: Any) -> LoadedModel:
    if isinstance(model_or_source, str):
        return load_model(model_or_source)
    if isinstance(model_or_source, LoadedModel):
        return model_or_source
    if isinstance(model_or_source, nn.Module):
        return LoadedModel(model_or_source, type(model_or_source).__name__, None,
                           _declared_inputs(model_or_source), None)
    raise InspectUsageError(f"cannot inspect a {type(model_or_source).__name__}: give an "
                            f"nn.Module or a model source string")


def _solve_sizes(inspection: Inspection, model: nn.Module, dtypes: list[torch.dtype],
                 solve: bool, budget_s: float) -> None:
    """Run the input-size solver when a failure could be fixed by another size (or when
    asked), and add 'feed … input' to the fixes it supports."""
    diagnosis, shapes = inspection.diagnosis, inspection.input_shapes
    failed_checks = [c for c in inspection.checks if not c.ok]
    wants_size = (diagnosis is not None and diagnosis.solvable) or bool(failed_checks)
    if not (wants_size or solve):
        return
    budget = budget_s if solve else min(budget_s, DIAGNOSIS_SOLVER_BUDGET_S)
    # An input with its channels last is searched as the channels-first input it meant.
    fixed = diagnosis.input_fix if diagnosis is not None else None
    inspection.solver = solve_input_size(model, [fixed or shapes[0], *shapes[1:]], dtypes,
                                         budget_s=budget, give_up_early=not wants_size)
    _suggest_size(inspection, diagnosis, failed_checks)


def _with_guessed_input(loaded: LoadedModel, model: nn.Module, notes: list[str]
                        ) -> LoadedModel:
    """`loaded` with the input its first layer asks for as its default (said in a note)."""
    guess = guess_input(model, budget_s=DIAGNOSIS_SOLVER_BUDGET_S)
    if guess is None:
        raise InspectUsageError(no_input_message(loaded.name, model))
    notes.append(guess.note)
    return dataclasses.replace(loaded, default_input_shapes=[guess.shape],
                               dtype=loaded.dtype or guess.dtype)


def _add_memory(inspection: Inspection, model: nn.Module, shapes: list, dtypes: list,
                request: MemoryRequest, fits: bool = False) -> None:
    estimate, trained = estimate_memory(model, shapes, dtypes, request)
    inspection.memory = estimate
    if estimate is None:
        inspection.notes.append(f"no memory estimate: the training forward fails "
                                f"({trained.diagnosis.message})")
        return
    copy_saved_bytes(trained.rows, inspection.all_rows)
    if fits:
        inspection.fits = what_fits(model, shapes, dtypes, request, estimate, trained.rows)


def _declared_inputs(model: nn.Module) -> list[tuple[int, ...]] | None:
    declared = getattr(model, "input_shape", None)
    if isinstance(declared, tuple) and declared and all(isinstance(d, int) for d in declared):
        return [declared]
    return None


def _input_dtypes(specs: list[InputSpec], requested: torch.dtype | str | None,
                  model_dtype: torch.dtype | None, embedding_first: bool,
                  notes: list[str]) -> list[torch.dtype]:
    """Per input: its own ':dtype', else `dtype=`, else the zoo's, else a guess (token ids for
    the first input of a model that starts with an Embedding), else float32."""
    if requested is not None:
        default = requested if isinstance(requested, torch.dtype) else _torch_dtype(requested)
    else:
        default = model_dtype or torch.float32
    dtypes = [_torch_dtype(s.dtype) if s.dtype else default for s in specs]
    if requested is None and model_dtype is None and embedding_first and specs[0].dtype is None:
        dtypes[0] = torch.int64
        notes.append("the first input is int64 token ids: the model starts with an Embedding")
    return dtypes


def _torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, normalize_dtype(name))


def _input_specs(input_shapes: Any, loaded: Any) -> list[InputSpec]:
    if input_shapes is None:
        if not loaded.default_input_shapes:
            raise InspectUsageError(f"{loaded.name} has no default input shape: give one, "
                                    f"e.g. --input 3x224x224")
        return [InputSpec(tuple(s)) for s in loaded.default_input_shapes]
    if isinstance(input_shapes, (str, InputSpec)):
        input_shapes = [input_shapes]
    elif isinstance(input_shapes, Sequence) and all(isinstance(d, int) for d in input_shapes):
        input_shapes = [tuple(input_shapes)]
    specs: list[InputSpec] = []
    for item in input_shapes:
        if isinstance(item, InputSpec):
            specs.append(item)
        elif isinstance(item, str):
            specs.extend(parse_inputs(item))
        elif isinstance(item, Sequence) and all(isinstance(d, int) and d > 0 for d in item):
            specs.append(InputSpec(tuple(item)))
        else:
            raise ShapeParseError(f"bad input shape {item!r}: give a tuple of positive ints or "
                                  f"a string like 1x28x28")
    if not specs:
        raise InspectUsageError("no input shape given")
    return specs


def _first_leaf(model: nn.Module) -> nn.Module | None:
    """The first module without children that holds parameters of its own."""
    return next((m for m in model.modules() if next(iter(m.children()), None) is None
                 and next(iter(m.parameters(recurse=False)), None) is not None), None)


def _sample_ranks(loaded: Any, model: nn.Module, count: int) -> list[int | None]:
    """Rank of one sample per input, so '1x28x28' can be told apart from '64x1x28x28'."""
    defaults = loaded.default_input_shapes or []
    ranks: list[int | None] = [len(defaults[i]) if i < len(defaults) else None
                               for i in range(count)]
    if ranks and ranks[0] is None:
        first = _first_leaf(model)
        n = spatial_rank(first) if first is not None else None
        if n is not None:
            ranks[0] = n + 1  # C × spatial
        elif isinstance(first, nn.RNNBase) and first.batch_first:
            ranks[0] = 2  # steps × features
        elif isinstance(first, (nn.Embedding, nn.Linear)):
            ranks[0] = 1
    return ranks


def _totals(model: nn.Module, rows: list[LayerRow], shapes: list, dtypes: list) -> Totals:
    totals = Totals(batch_size=shapes[0][0] if shapes and shapes[0] else 1)
    # model.parameters() yields each once: shared ones count once.
    totals.params_trainable, totals.params_frozen = count_params(model.parameters())
    totals.params = totals.params_trainable + totals.params_frozen
    totals.param_bytes = param_bytes(model)
    totals.buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
    totals.input_bytes = sum(math.prod(s) * torch.empty((), dtype=d).element_size()
                             for s, d in zip(shapes, dtypes))
    totals.mult_adds = sum(r.mult_adds for r in rows if r.depth == 0)
    totals.activation_bytes = sum(
        r.output_bytes for r in rows
        if (r.kind == "module" and r.leaf)
        or (r.kind == "function" and r.type not in RESHAPE_LABELS))
    return totals


def _suggest_size(inspection: Inspection, diagnosis: Diagnosis | None,
                  failed: list[FlattenCheck]) -> None:
    solver = inspection.solver
    if solver is None or solver.suggested is None:
        return
    feed = f"feed {format_shape(solver.shape_for(solver.suggested))} input"
    if diagnosis is not None and diagnosis.solvable:
        diagnosis.fixes.append(feed)
    for check in failed:
        check.fix = f"{check.fix}, or {feed}" if check.fix else feed
