"""Two models side by side (`m` marks one in the picker, `d` on a second opens this): rows
aligned by tui_nn.shapes.diff (+ inserted in the second, - removed, ~ changed), the first
output that differs, why a Linear's input moved, and the totals of both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from tui_nn.textsafe import first_line
from tui_nn.fmt import fmt_count
from tui_nn.tui.widgets.inspector_table import shape_text

if TYPE_CHECKING:
    from tui_nn.shapes.diff import InspectionDiff

MARKS = {"same": " ", "changed": "~", "inserted": "+", "removed": "-"}
STYLES = {"changed": "yellow", "inserted": "green", "removed": "red"}


class Side:
    """One model to compare: its source, the model object for a file's model, its input, and
    the source as the picker shows it (inert: tui.catalog.ModelEntry.shown_source)."""

    def __init__(self, source: str, model: Any, input_text: str, shown: str) -> None:
        self.source, self.model, self.input_text = source, model, input_text
        self.shown = shown

    def inspect(self) -> Any:
        from tui_nn.shapes import inspect_model

        return inspect_model(self.model if self.model is not None else self.source,
                             self.input_text.strip() or None)


@dataclass
class _Diffed(Message):
    diff: "InspectionDiff | None"
    error: str | None


class ModelDiffScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,d", "close", "Close")]

    def __init__(self, a: Side, b: Side) -> None:
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        with Vertical(id="diff-dialog"):
            title = f"{self.a.shown} vs {self.b.shown}  (esc: close)"
            yield Label(Text(title[:120], style="bold"), id="diff-title")
            yield DataTable(id="diff-rows", cursor_type="row", cell_padding=1)
            yield Static("tracing both…", id="diff-summary")

    def on_mount(self) -> None:
        self._run()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _run(self) -> None:
        try:
            from tui_nn.shapes.diff import diff_inspections
            from tui_nn.tui.bridge import in_fresh_thread

            diff = in_fresh_thread(lambda: diff_inspections(self.a.inspect(), self.b.inspect()),
                                   "tui-nn-diff")
            self.post_message(_Diffed(diff, None))
        except Exception as exc:  # noqa: BLE001 - shown in the dialog
            self.post_message(_Diffed(None, first_line(exc)))

    @on(_Diffed)
    def _show(self, event: _Diffed) -> None:
        summary = self.query_one("#diff-summary", Static)
        if event.diff is None:
            summary.update(Text(f"✗ {event.error or 'failed'}", style="bold red"))
            return
        table = self.query_one("#diff-rows", DataTable)
        table.add_columns(" ", "layer", "output A", "output B", "params", "mult-adds")
        for row in event.diff.rows:
            table.add_row(*diff_row_cells(row))
        # Layer paths and checks come inert (shapes.records).
        summary.update(Text("\n".join(summary_lines(event.diff))))

    def action_close(self) -> None:
        self.dismiss(None)


def _count(n: int) -> str:
    return fmt_count(n) if n else ""


def _moved(a: int | None, b: int | None) -> str:
    """One number when it is the same, 'A→B' when it moved: short enough for 80 columns."""
    if a is None or b is None:
        return _count((a if b is None else b) or 0)
    return _count(a) if a == b else f"{fmt_count(a)}→{fmt_count(b)}"


def diff_row_cells(row: Any) -> list[Text]:
    style = STYLES.get(row.status, "")
    a, b = row.a, row.b
    cells = [MARKS[row.status], "  " * max(row.depth - 1, 0) + row.path[:120],
             shape_text(a.output_shapes) if a else "", shape_text(b.output_shapes) if b else "",
             _moved(a.params if a else None, b.params if b else None),
             _moved(a.mult_adds if a else None, b.mult_adds if b else None)]
    return [Text(c, style=style, no_wrap=True) for c in cells]


def summary_lines(diff: "InspectionDiff") -> list[str]:
    counts = diff.counts
    lines = [f"{counts['changed']} changed, {counts['inserted']} inserted, "
             f"{counts['removed']} removed, {counts['same']} the same"]
    first = diff.first_output_change
    if first is not None:
        lines.append(f"first output that differs: {first.path[:80]}  "
                     f"{shape_text(first.a.output_shapes)} → {shape_text(first.b.output_shapes)}")
    lines.extend(f"Linear input: {f.path[:80]}  {f.text}" for f in diff.features)
    ta, tb = diff.a.totals, diff.b.totals
    lines.append(f"params {fmt_count(ta.params)} → {fmt_count(tb.params)}  ·  mult-adds "
                 f"{fmt_count(ta.mult_adds)} → {fmt_count(tb.mult_adds)}  ·  flops "
                 f"{fmt_count(ta.flops)} → {fmt_count(tb.flops)}")
    return lines
