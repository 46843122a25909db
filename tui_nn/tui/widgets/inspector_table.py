"""The inspector's layer table laid out to fit its width without cutting a number.

DataTable crops a cell that is wider than its column and the screen crops a table wider than
its pane: either turns `= 28` into `= 2`, arithmetic that reads wrong. So the columns are
sized to their content here, and when they do not fit, the less important ones give way in
order: the type column goes, then the arithmetic and checks switch to a compact form, then
layer names are shortened (names, never numbers), then the params column goes (the totals
stay in the summary line). Only a table that still does not fit scrolls sideways.
"""

from __future__ import annotations

from tui_nn.fmt import fmt_bytes, format_shape

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.text import Text

if TYPE_CHECKING:
    from tui_nn.shapes import FlattenCheck, Inspection, LayerRow

GAP = 1  # blank columns after each cell (the table's own cell padding is 0)
MIN_LAYER = 10  # a layer column is never shortened below this


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    right: bool = False  # numbers line up on the right


COLUMNS = (Column("layer", "layer"), Column("output", "output"),
           Column("arith", "arithmetic / check"), Column("params", "params", right=True),
           Column("type", "type"),
           # Only with a training-memory inspection (`v`): bytes saved for backward.
           Column("saved", "saved ▼", right=True))


@dataclass
class Cell:
    text: str
    style: str = ""


@dataclass
class Layout:
    """What `fit` chose: the columns shown, their widths, and the cells for each row."""

    columns: list[Column]
    widths: list[int]  # content widths, without the gap
    rows: list[tuple[str, list[Cell]]]  # (row key, cells in column order)
    compact: bool

    @property
    def width(self) -> int:
        return sum(self.widths) + GAP * len(self.widths)


def count_text(n: int) -> str:
    if n >= 10_000_000:
        return f"{n / 1e6:.0f}M"
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    return f"{n:,}" if n else ""


def arithmetic_text(row: "LayerRow", compact: bool) -> str:
    """'H,W: ⌊(28+0−4−1)/1⌋+1 = 24'; compact drops 'H,W: ' when every dim is the same."""
    groups: list[tuple[list[str], str, int]] = []
    for f in row.arithmetic:
        numbers = f.numbers.replace(" ", "") if f.numbers else f.rule
        for dims, text, value in groups:
            if text == numbers and value == f.value:
                dims.append(f.dim)
                break
        else:
            groups.append(([f.dim], numbers, f.value))
    if compact and len(groups) == 1:
        return f"{groups[0][1]} = {groups[0][2]}"
    return "  ".join(f"{','.join(d)}: {t} = {v}" for d, t, v in groups)


def check_text(check: "FlattenCheck", compact: bool) -> str:
    """'Linear(320) ← 20 × 4 × 4 = 320 ✓'; compact: '20×4×4 = 320 ✓' (the row is the Linear,
    and the full sentence is in the checks below the table)."""
    if not compact:
        return check.text
    if check.factors is None:
        return f"rows of {check.got} mix samples ✗"
    factors = "×".join(str(d) for d in check.factors)
    if check.ok:
        return f"{factors} = {check.got} ✓"
    return f"{factors} = {check.got} ≠ {check.in_features} ✗"


def shape_text(shapes: list[tuple[int, ...]]) -> str:
    if not shapes:
        return ""
    text = format_shape(shapes[0])
    return text + (f" (+{len(shapes) - 1})" if len(shapes) > 1 else "")


def row_cells(row: "LayerRow", check: "FlattenCheck | None", compact: bool) -> list[Cell]:
    style = {"error": "bold red", "unfinished": "dim"}.get(row.status, "")
    name = row.name if row.depth else row.type
    if row.kind == "function":
        name = row.name if compact else row.type  # 'max_pool2d' / 'F.max_pool2d'
    # Layer names and types are the model's own strings (a file's code): inert from
    # shapes.records.LayerRow, and drawn as Text (render_cell), never as markup.
    name = "  " * max(row.depth - 1, 0) + name[:120] + (" (again)" if row.repeat else "")
    if check is not None:
        arith = Cell(check_text(check, compact), "green" if check.ok else "bold red")
    elif row.status == "error":
        arith = Cell("✗ fails here", "bold red")
    else:
        arith = Cell(arithmetic_text(row, compact))
    output = shape_text(row.output_shapes) if row.status != "error" else "✗"
    return [Cell(name, style), Cell(output, style), arith, Cell(count_text(row.params)),
            Cell(row.type[:80], "dim"),
            Cell(fmt_bytes(row.saved_bytes) if row.saved_bytes else "")]


def _layout(inspection: "Inspection", rows: list["LayerRow"], compact: bool,
            keys: tuple[str, ...]) -> Layout:
    checks = {c.path: c for c in inspection.checks}
    picked = [i for i, c in enumerate(COLUMNS) if c.key in keys]
    out_rows = []
    for row in rows:
        check = checks.get(row.path) if row.kind == "module" else None
        cells = row_cells(row, check, compact)
        out_rows.append((f"{row.index}", [cells[i] for i in picked]))
    columns = [COLUMNS[i] for i in picked]
    widths = [max([cell_len(c.label)] + [cell_len(r[1][j].text) for r in out_rows])
              for j, c in enumerate(columns)]
    return Layout(columns, widths, out_rows, compact)


def fit(inspection: "Inspection", rows: list["LayerRow"], available: int) -> Layout:
    """The most informative layout that fits `available` cells (see the module docstring)."""
    everything = tuple(c.key for c in COLUMNS
                       if c.key != "saved" or inspection.memory is not None)
    no_type = tuple(k for k in everything if k != "type")
    layout = _layout(inspection, rows, False, everything)
    for compact, keys in ((False, no_type), (True, no_type)):
        if layout.width <= available:
            return layout
        layout = _layout(inspection, rows, compact, keys)
    if layout.width > available:
        _shorten_layer(layout, available)
    if layout.width > available:
        saved = ("saved",) if inspection.memory is not None else ()
        layout = _layout(inspection, rows, True, ("layer", "output", "arith", *saved))
        _shorten_layer(layout, available)
    return layout


def _shorten_layer(layout: Layout, available: int) -> None:
    excess = layout.width - available
    layout.widths[0] = max(MIN_LAYER, layout.widths[0] - excess)


def render_cell(cell: Cell, width: int, column: Column) -> Text:
    """The cell padded to its column (numbers on the right) plus the gap; names too long for
    a shortened layer column end in '…'."""
    text = Text(cell.text, style=cell.style, no_wrap=True, overflow="ellipsis", end="")
    if cell_len(cell.text) > width:
        text.truncate(width, overflow="ellipsis")
    pad = " " * (width - text.cell_len)
    if column.right:
        return Text.assemble(pad, text, " " * GAP, no_wrap=True, end="")
    return Text.assemble(text, pad, " " * GAP, no_wrap=True, end="")


def render_label(column: Column, width: int) -> Text:
    return render_cell(Cell(column.label), width, column)
