"""Render an `Inspection`: a rich table on a terminal, plain text when piped, JSON for machines.

The cells and sections are built once (`table_cells`, `sections`) and both the rich and the
plain renderers lay them out, so the two never say different things.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tui_nn.commands.tables import text_table
from tui_nn.fmt import fmt_bytes, fmt_count, format_shape
from tui_nn.shapes.fits import top_saved
from tui_nn.shapes.uncounted import summary as uncounted_summary

if TYPE_CHECKING:
    from rich.console import Console

    from tui_nn.shapes.records import Formula, Inspection, LayerRow

HEADERS = ("Layer (path)", "Type", "Input", "Output", "Params", "Mult-adds", "Output size")
# With a memory estimate: what each call saves for backward at the estimate's batch size.
SAVED_HEADER = "Saved (train)"
_NUMERIC = {"Params", "Mult-adds", "Output size", SAVED_HEADER}


def headers(inspection: Inspection) -> tuple[str, ...]:
    return HEADERS + (SAVED_HEADER,) if inspection.memory is not None else HEADERS


def _shapes_text(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join(format_shape(s) for s in shapes)


def _params_text(row: LayerRow) -> str:
    if row.kind == "function" or row.params == 0:
        return "—"
    text = f"{row.params_trainable:,}"
    if row.params_frozen:
        text = f"{text} + {row.params_frozen:,} frozen" if row.params_trainable else \
            f"{row.params_frozen:,} frozen"
    return f"({text})" if row.repeat else text  # a second call: counted once in the totals


def _layer_text(row: LayerRow) -> str:
    # The full path, indented by depth: names repeat ('conv1' and 'rblock1.conv1').
    mark = {"error": "✗ ", "unfinished": "… "}.get(row.status, "")
    cpu = " [cpu]" if row.device == "cpu" else ""
    return f"{'  ' * row.depth}{mark}{row.path or row.name}{cpu}"


def table_cells(inspection: Inspection) -> list[tuple[LayerRow, list[str]]]:
    """Layer names and types come from the model's code, inert (shapes.records.LayerRow)."""
    cells = []
    saved = inspection.memory is not None
    for row in inspection.rows:
        cells.append((row, [c[:200] for c in (
            _layer_text(row),
            row.detail if row.kind == "function" else row.type,
            _shapes_text(row.input_shapes),
            _shapes_text(row.output_shapes) if row.status != "error" else "✗",
            _params_text(row),
            fmt_count(row.mult_adds) if row.mult_adds else "—",
            fmt_bytes(row.output_bytes) if row.output_shapes else "—",
            *([fmt_bytes(row.saved_bytes) if row.saved_bytes else "—"] if saved else []),
        )]))
    return cells


def memory_lines(inspection: Inspection) -> list[str]:
    """The 'Training memory' section: each part, the total, and whether / up to what fits."""
    m = inspection.memory
    precision = "" if m.amp == "off" else f", {m.amp} autocast"
    lines = [f"batch {m.batch_size}, {m.optimizer}{precision}:",
             f"  parameters   {fmt_bytes(m.params):>11}",
             f"  gradients    {fmt_bytes(m.grads):>11}",
             f"  optimizer    {fmt_bytes(m.optimizer_state):>11}   ({m.optimizer} state)",
             f"  activations  {fmt_bytes(m.activations):>11}   (saved for backward, "
             f"input included)"]
    if m.amp_weight_copies:
        lines.append(f"               of which {fmt_bytes(m.amp_weight_copies)} are {m.amp} "
                     f"copies of the weights autocast keeps for backward")
    lines.append(f"  total        {fmt_bytes(m.total):>11}")
    if m.budget is not None:
        verdict = "fits ✓" if m.fits else "does not fit ✗"
        lines.append(f"budget {fmt_bytes(m.budget)}: {verdict}; largest batch that fits: "
                     f"{m.max_batch:,}" if m.max_batch else
                     f"budget {fmt_bytes(m.budget)}: {verdict}; not even batch 1 fits")
    else:
        lines.append("no budget: give --device-memory 80GiB (no GPU visible)")
    if m.measured is not None:
        lines.extend(measured_lines(m))
    return lines


def memory_sections(inspection: Inspection) -> list[tuple[str, list[str]]]:
    out = [("Training memory", memory_lines(inspection))]
    if top_saved(inspection.all_rows):
        out.append((f"Saves the most for backward (batch {inspection.memory.batch_size})",
                    top_saved_lines(inspection)))
    if inspection.fits:
        out.append(("What fits", fits_lines(inspection)))
    return out


def top_saved_lines(inspection: Inspection) -> list[str]:
    """The five layers that save the most for backward, with their share of the total."""
    total = inspection.memory.activations or 1
    rows = top_saved(inspection.all_rows)
    width = max((len(r.path) for r in rows), default=0)
    return [f"{r.path:{width}}  {r.type:16} {fmt_bytes(r.saved_bytes):>10}  "
            f"{100 * r.saved_bytes / total:4.1f}%" for r in rows]


def fits_lines(inspection: Inspection) -> list[str]:
    """'What fits': each lever's activations, total and largest batch, one line each."""
    m = inspection.memory
    budget = f"largest batch in {fmt_bytes(m.budget)}" if m.budget else "largest batch"
    lines = [f"{'':22}{'activations':>12}{'total':>12}  {budget}"]
    for option in inspection.fits:
        best = f"{option.max_batch:,}" if option.max_batch is not None else "— (no budget)"
        lines.append(f"{option.label:22}{fmt_bytes(option.activations):>12}"
                     f"{fmt_bytes(option.total):>12}  {best}")
    return lines + [f"{o.label}: {o.change}" for o in inspection.fits if o.change]


def _ratio(measured: int, predicted: int) -> str:
    return f"{measured / predicted:.3f}" if predicted else "—"


def measured_lines(m) -> list[str]:
    """Predicted beside measured (`--measure`): one real training step at the same batch."""
    real = m.measured
    lines = [f"measured on {real.device} (one training step at batch {m.batch_size}):",
             f"  {'':13}{'predicted':>11}  {'measured':>11}  ratio",
             f"  activations  {fmt_bytes(m.activations):>11}  "
             f"{fmt_bytes(real.activations):>11}  {_ratio(real.activations, m.activations)}"]
    if real.peak_allocated is not None:
        step = m.params + m.grads + m.activations
        lines.append(f"  peak (CUDA)  {fmt_bytes(step):>11}  "
                     f"{fmt_bytes(real.peak_allocated):>11}  "
                     f"{_ratio(real.peak_allocated, step)}   (predicted: params + grads + "
                     f"activations; measured: max_memory_allocated over forward + backward)")
    return lines


def formula_lines(formulas: list[Formula]) -> list[str]:
    """One line per distinct dim; 'W the same' instead of repeating an identical line."""
    lines: list[str] = []
    done: set[int] = set()
    for i, f in enumerate(formulas):
        if i in done:
            continue
        same = [j for j in range(i + 1, len(formulas))
                if formulas[j].numbers == f.numbers and formulas[j].value == f.value
                and formulas[j].rule.replace(formulas[j].dim, f.dim) == f.rule]
        done.update(same)
        suffix = f"   ({', '.join(formulas[j].dim for j in same)} the same)" if same else ""
        lines.append(f.text + suffix)
    return lines


def totals_lines(inspection: Inspection) -> list[str]:
    """Parameters, mult-adds and flops, what was not counted, activations."""
    t = inspection.totals
    frozen = f", {t.params_frozen:,} frozen" if t.params_frozen else ""
    return [
        f"parameters: {t.params:,} ({t.params_trainable:,} trainable{frozen}), "
        f"{fmt_bytes(t.param_bytes)}"
        + (f" + {fmt_bytes(t.buffer_bytes)} buffers" if t.buffer_bytes else ""),
        f"mult-adds: {fmt_count(t.mult_adds)} ({t.mult_adds:,}) for a batch of {t.batch_size}; "
        f"flops: {fmt_count(t.flops)} (2 per multiply-add)",
        *([f"not counted: {uncounted_summary(inspection.not_counted)}"]
          if inspection.not_counted else []),
        f"activations: {fmt_bytes(t.activation_bytes)} for a batch of {t.batch_size}; "
        f"input {fmt_bytes(t.input_bytes)}",
    ]


def sections(inspection: Inspection) -> list[tuple[str, list[str]]]:
    """(title, lines) blocks shown under the table; styles are applied by the renderer."""
    out: list[tuple[str, list[str]]] = []
    arithmetic: list[str] = []
    for row in inspection.rows:
        if row.arithmetic:
            what = row.detail or row.type
            arithmetic.append(f"{row.path or row.name}  {what}")
            arithmetic.extend(f"  {line}" for line in formula_lines(row.arithmetic))
    if arithmetic:
        out.append(("How the sizes come about", arithmetic))
    if inspection.checks:
        lines = []
        for check in inspection.checks:
            by = f"   (flattened by {check.flatten_op}" + \
                 (f" at {check.flatten_path})" if check.flatten_path else ")")
            lines.append(f"{check.path}  {check.text}{by}")
            if not check.ok:
                lines.append(f"  problem: {check.problem}")
                lines.append(f"  fix: {check.fix}")
        out.append(("Flatten checks", lines))
    out.append(("Totals", totals_lines(inspection)))
    d = inspection.diagnosis
    if d is not None:
        where = f"{d.path} ({d.type})" if d.path else d.type
        lines = [f"✗ {where}: {d.message}"]
        if d.got:
            lines.append(f"  got: {_shapes_text(d.got)}" + (f"   expected: {d.expected}"
                                                             if d.expected else ""))
        if d.fixes:
            lines.append(f"  fix: {d.fix}")
        if d.error and d.error not in d.message:
            lines.append(f"  error: {d.error}")
        out.append(("Diagnosis", lines))
    solver = inspection.solver
    if solver is not None and (solver.complete or solver.working):
        sizes = ", ".join(
            format_shape(solver.shape_for(a)) if a == b else
            f"{format_shape(solver.shape_for(a))} … {format_shape(solver.shape_for(b))}"
            for a, b in solver.ranges())
        scope = f"square sizes {solver.scanned[0]}–{solver.scanned[1]} tried"
        if not solver.complete:
            scope += ", stopped early"
        out.append(("Input sizes that pass", [f"{sizes or 'none'}   ({scope})"]))
    if inspection.memory is not None:
        out.extend(memory_sections(inspection))
    if inspection.notes:
        out.append(("Notes", list(inspection.notes)))
    # The model's names and its code's errors come inert (shapes.records), as do the notes.
    return out


def status_line(inspection: Inspection) -> str:
    inputs = ", ".join(f"{format_shape(s)} {d}" for s, d in
                       zip(inspection.input_shapes, inspection.input_dtypes))
    verdict = "ok" if inspection.ok else "shape mismatch"
    return f"{inspection.model_name}  input {inputs}: {verdict}"  # the name is inert


def render_plain(inspection: Inspection) -> str:
    names = list(headers(inspection))
    table = text_table(names, [c for _, c in table_cells(inspection)],
                       right={i for i, h in enumerate(names) if h in _NUMERIC})
    out = [status_line(inspection), "", table.rstrip("\n")]
    for title, lines in sections(inspection):
        out.extend(["", f"{title}:"])
        out.extend(f"  {text}" for text in lines)
    return "\n".join(out) + "\n"


def render_rich(inspection: Inspection, console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    # Text cells, never markup strings: a layer named "x[/]" or "[link=...]" is shown as is.
    table = Table(title=Text(status_line(inspection)), title_justify="left", header_style="bold",
                  show_edge=False, pad_edge=False)
    for header in headers(inspection):
        table.add_column(header, justify="right" if header in _NUMERIC else "left",
                         no_wrap=header in ("Layer (path)", "Input", "Output"))
    for row, row_cells in table_cells(inspection):
        style = {"error": "bold red", "unfinished": "dim"}.get(row.status, "")
        if not style and row.kind == "function":
            style = "cyan"
        table.add_row(*(Text(c) for c in row_cells), style=style or None)
    console.print(table)
    for title, lines in sections(inspection):
        style = {"Diagnosis": "bold red", "Notes": "yellow"}.get(title, "bold")
        console.print()
        console.print(Text(f"{title}:", style=style))
        for text in lines:
            line_style = "green" if text.rstrip().endswith("✓") or "✓   (" in text else \
                "red" if "✗" in text else None
            console.print(Text(f"  {text}", style=line_style or ""),
                          soft_wrap=True)


def render_json(inspection: Inspection) -> str:
    return json_one_row_a_line(inspection.to_dict())


def json_one_row_a_line(data: dict) -> str:
    """Indented JSON, except that each entry of `data["rows"]` is one line: as readable for a
    row-per-layer listing, and json's C encoder writes those lines (it never indents: the
    indenting encoder is Python, several times slower on a large model's thousand rows)."""
    parts = []
    for key, value in data.items():
        if key == "rows" and value:
            rows = ",\n".join(f"    {json.dumps(row, ensure_ascii=False)}" for row in value)
            text = f"[\n{rows}\n  ]"
        else:  # JSON strings hold no raw newline: every newline here starts a nested line
            text = json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key, ensure_ascii=False)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}"
