"""Render an `InspectionDiff` (`tui-nn inspect A --diff B`): plain text when piped, a coloured
table on a terminal, JSON for machines. The cells are built once and laid out by both.

The table is made to be read at 80 columns: one mark column (+ inserted in B, − removed,
~ changed), both outputs, and a number shown once when it is the same, "A→B" when it moved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui_nn.commands.inspect_render import json_one_row_a_line, status_line
from tui_nn.fmt import fmt_bytes, fmt_count, format_shape

if TYPE_CHECKING:
    from rich.console import Console

    from tui_nn.shapes.diff import DiffRow, InspectionDiff
    from tui_nn.shapes.records import LayerRow

WIDTH = 80
MARKS = {"same": " ", "changed": "~", "inserted": "+", "removed": "-"}
_STYLES = {"changed": "yellow", "inserted": "green", "removed": "red"}
_NUMERIC = (False, False, False, False, True, True, True)
MIN_LAYER = 12


def diff_headers(diff: InspectionDiff) -> list[str]:
    # 'A' and 'B' as in the two lines above the table: the model names would widen them.
    names = [" ", "Layer", "Output A", "Output B", "Params", "Mult-adds"]
    if diff.a.memory is not None and diff.b.memory is not None:
        names.append("Saved")  # bytes for backward in one training forward
    return names


def side_labels(diff: InspectionDiff) -> tuple[str, str]:
    """Column labels: 'resnet18' for torchvision.models:resnet18, 'Net' for model.py:Net;
    'A' and 'B' when those would be the same."""
    a, b = (_short(i.model_name) for i in (diff.a, diff.b))
    return ("A", "B") if a == b else (a, b)


def _short(name: str) -> str:
    tail = name.rsplit(":", 1)[-1].rsplit(".", 1)[-1] if ":" in name else name
    return tail[:13]  # Inspection.model_name is inert


def _outputs(row: LayerRow | None) -> str:
    if row is None:
        return ""
    if row.status == "error":
        return "✗"
    return ", ".join(format_shape(s) for s in row.output_shapes)


def _moved(a: int | None, b: int | None, fmt) -> str:
    if a is None or b is None:
        value = a if b is None else b
        return fmt(value) if value else "—"
    if a == b:
        return fmt(a) if a else "—"
    return f"{fmt(a) if a else '0'}→{fmt(b) if b else '0'}"


def _params(row: LayerRow | None) -> int | None:
    if row is None:
        return None
    return 0 if row.kind == "function" or row.repeat else row.params


def diff_cells(diff: InspectionDiff) -> list[tuple[DiffRow, list[str]]]:
    saved = diff.a.memory is not None and diff.b.memory is not None
    out = []
    for row in diff.rows:
        a, b = row.a, row.b
        cells = [MARKS[row.status], f"{'  ' * row.depth}{row.path}", _outputs(a), _outputs(b),
                 _moved(_params(a), _params(b), fmt_count),
                 _moved(a.mult_adds if a else None, b.mult_adds if b else None, fmt_count)]
        if saved:
            # Short ('480K'): 'A→B' fits 80 columns.
            cells.append(_moved(a.saved_bytes if a else None, b.saved_bytes if b else None,
                                lambda n: fmt_bytes(n, short=True)))
        out.append((row, [c[:200] for c in cells]))  # layer paths are inert (LayerRow)
    return out


def _fit_widths(headers: list[str], cells: list[list[str]]) -> list[int]:
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row)]
    over = sum(widths) + 2 * (len(widths) - 1) - WIDTH
    if over > 0:  # the layer names give way first: the numbers are what is compared
        widths[1] = max(MIN_LAYER, widths[1] - over)
    return widths


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def diff_table_lines(diff: InspectionDiff) -> list[str]:
    headers = diff_headers(diff)
    cells = [c for _, c in diff_cells(diff)]
    widths = _fit_widths(headers, cells)

    def line(values: list[str]) -> str:
        parts = [_cut(v, w).rjust(w) if num else _cut(v, w).ljust(w)
                 for v, w, num in zip(values, widths, _NUMERIC)]
        return "  ".join(parts).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(c) for c in cells)]


def diff_sections(diff: InspectionDiff) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    counts = diff.counts
    summary = (f"{counts['changed']} changed, {counts['inserted']} inserted in B, "
               f"{counts['removed']} removed from A, {counts['same']} the same")
    out.append(("Rows", [summary]))
    first = diff.first_output_change
    if first is not None:
        out.append(("First output that differs", [
            f"{first.path}  {_outputs(first.a)} → {_outputs(first.b)}"]))
    if diff.features:
        out.append(("Linear inputs", [f"{f.path}  {f.text}" for f in diff.features]))
    out.append(("Totals", totals_lines(diff)))
    notes = [f"A: {n}" for n in diff.a.notes] + [f"B: {n}" for n in diff.b.notes]
    if notes:
        out.append(("Notes", notes))
    return out  # layer paths, checks and notes come inert (shapes.records)


def totals_lines(diff: InspectionDiff) -> list[str]:
    """The two models' totals in columns, with B − A."""
    ta, tb = diff.a.totals, diff.b.totals
    rows = [("parameters", ta.params, tb.params, fmt_count),
            ("mult-adds", ta.mult_adds, tb.mult_adds, fmt_count),
            ("flops", 2 * ta.mult_adds, 2 * tb.mult_adds, fmt_count),
            ("activations", ta.activation_bytes, tb.activation_bytes, fmt_bytes),
            ("param bytes", ta.param_bytes, tb.param_bytes, fmt_bytes)]
    ma, mb = diff.a.memory, diff.b.memory
    if ma is not None and mb is not None:
        rows.append(("train saved", ma.activations, mb.activations, fmt_bytes))
        rows.append(("train total", ma.total, mb.total, fmt_bytes))
        if ma.max_batch is not None and mb.max_batch is not None:
            rows.append(("largest batch", ma.max_batch, mb.max_batch, lambda n: f"{n:,}"))
    label_a, label_b = side_labels(diff)
    head = f"{'':14}{label_a:>14}{label_b:>14}{'B − A':>14}"
    lines = [head]
    for label, a, b, fmt in rows:
        delta = b - a
        sign = "+" if delta > 0 else "−" if delta < 0 else ""
        lines.append(f"{label:14}{fmt(a):>14}{fmt(b):>14}"
                     f"{(sign + fmt(abs(delta))) if delta else '=':>14}")
    return lines


def diff_header_lines(diff: InspectionDiff) -> list[str]:
    return [f"A: {status_line(diff.a)}", f"B: {status_line(diff.b)}"]


def render_diff_plain(diff: InspectionDiff) -> str:
    out = [*diff_header_lines(diff), "", *diff_table_lines(diff)]
    for title, lines in diff_sections(diff):
        out.extend(["", f"{title}:"])
        out.extend(f"  {text}" for text in lines)
    return "\n".join(out) + "\n"


def render_diff_rich(diff: InspectionDiff, console: Console) -> None:
    from rich.text import Text

    for line in diff_header_lines(diff):
        console.print(Text(line, style="bold"))
    console.print()
    lines = diff_table_lines(diff)
    console.print(Text(lines[0], style="bold"), soft_wrap=True)
    console.print(Text(lines[1]), soft_wrap=True)
    for (row, _), text in zip(diff_cells(diff), lines[2:]):
        console.print(Text(text, style=_STYLES.get(row.status, "")), soft_wrap=True)
    for title, section in diff_sections(diff):
        console.print()
        console.print(Text(f"{title}:", style="bold"))
        for text in section:
            console.print(Text(f"  {text}"), soft_wrap=True)


def render_diff_json(diff: InspectionDiff) -> str:
    return json_one_row_a_line(diff.to_dict())
