"""The shape inspector pane: every layer's output shape, parameters and the conv/pool arithmetic
with the numbers filled in, flatten checks (✓/✗), and — when a shape does not fit — the
diagnosis and the fix. The input shape is edited in place; the table follows as you type.

Tracing runs on the meta device (tui_nn.shapes) in a thread worker, so typing never waits for
it; a result that arrives after a newer edit is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult

from tui_nn.fmt import format_shape
from tui_nn.textsafe import first_line
from tui_nn.tui.markup import markup_data as _escape  # model-derived text in markup
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import DataTable, Input, Label, Static

from tui_nn.tui.widgets.inspector_table import (COLUMNS, GAP, Layout, fit, render_cell,
                                                render_label, shape_text)

if TYPE_CHECKING:
    from tui_nn.shapes import Inspection, LayerRow

DEBOUNCE_S = 0.15
PLACEHOLDER = "e.g. 1x28x28"


class ShapeInspector(Vertical):
    """Shows the inspection of ``source`` at ``input_text``; posts Inspected after each run."""

    _ready = False  # set in on_mount: widgets exist from then on

    @dataclass
    class Inspected(Message):
        """An inspection finished (``error``: it could not even start, e.g. a bad shape)."""

        source: str
        input_text: str
        inspection: "Inspection | None"
        error: str | None
        generation: int

    source: reactive[str | None] = reactive(None)
    """The model being inspected: a zoo name or a model source string."""

    input_text: reactive[str] = reactive("")
    """The input shape as typed, e.g. '1x28x28' (batch optional, ':int64' for token ids)."""

    depth: reactive[int] = reactive(1)
    """How deep into the module tree the table goes (1 = the model's direct children)."""

    inspection: reactive["Inspection | None"] = reactive(None)
    """The latest inspection (None before the first one, or when it could not start)."""

    error: reactive[str | None] = reactive(None)
    """Why the latest inspection could not start (bad shape, model failed to load)."""

    by_saved: reactive[bool] = reactive(False)
    """Inspect a training step too and sort the rows by the bytes each saves for backward."""

    batch_size: int | None = None  # the training form's batch, for the saved bytes

    about: reactive[str] = reactive("")
    """What the model is and what to look for in it (the zoo's description and lesson)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._generation = 0  # inspections started
        self._shown = 0  # the generation on screen
        self._debounce: Timer | None = None
        self._model_cache: dict[str, Any] = {}  # source -> model object (user models only)
        self._laid_out_for = -1  # the width the table's columns were fitted to

    def compose(self) -> ComposeResult:
        with Horizontal(id="inspector-bar"):
            yield Label("input", classes="bar-label")
            yield Input(id="input-shape", placeholder=PLACEHOLDER, compact=True)
            yield Label("", id="depth-label", classes="bar-label")
            yield Label("", id="verdict")
        yield Static("", id="model-about")
        yield Static("", id="inspector-summary")
        # No cell padding: each cell carries its own one-column gap (inspector_table), so the
        # columns take one cell less each on a narrow terminal.
        table: DataTable = DataTable(id="layers", cursor_type="row", zebra_stripes=False,
                                     cell_padding=0)
        yield table
        yield Static("", id="row-detail")
        yield Static("", id="diagnosis")

    def on_mount(self) -> None:
        self._ready = True
        self._add_columns(self.query_one("#layers", DataTable))
        self._show_depth()

    @staticmethod
    def _add_columns(table: DataTable, layout: Layout | None = None) -> None:
        if layout is None:
            for column in COLUMNS:
                table.add_column(column.label, key=column.key)
            return
        for column, width in zip(layout.columns, layout.widths):
            table.add_column(render_label(column, width), key=column.key, width=width + GAP)

    def on_resize(self) -> None:
        if self._laid_out_for != self._available_width():
            self._fill_table()

    # ---- attributes down -> an inspection ----------------------------------------------------
    def register_model(self, source: str, model: Any) -> None:
        """A model object for a source that is not in the zoo (loaded by the screen)."""
        self._model_cache[source] = model

    def watch_source(self) -> None:
        self._schedule(0.0)

    def watch_about(self, about: str) -> None:
        self.query_one("#model-about", Static).update(about)

    def watch_input_text(self, text: str) -> None:
        field = self.query_one("#input-shape", Input)
        if field.value != text:
            with field.prevent(Input.Changed):
                field.value = text
        self._schedule(0.0)

    def watch_by_saved(self) -> None:
        self._schedule(0.0)

    def watch_depth(self) -> None:
        self._show_depth()
        self._fill_table()

    @on(Input.Changed, "#input-shape")
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.set_reactive(ShapeInspector.input_text, event.value)
        self._schedule(DEBOUNCE_S)

    @on(Input.Submitted, "#input-shape")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._schedule(0.0)

    def _schedule(self, delay: float) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        if self.source is None or not self._ready:
            return
        if delay <= 0:
            self._start()
        else:
            self._debounce = self.set_timer(delay, self._start)

    def _start(self) -> None:
        self._debounce = None
        if self.source is None:
            return
        self._generation += 1
        if self.inspection is None or self.inspection.model_name != self.source:
            self.query_one("#verdict", Label).update("[dim]tracing…[/]")
        batch = (self.batch_size or 0) if self.by_saved else None
        self._inspect(self.source, self.input_text, self._generation, batch)

    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def _inspect(self, source: str, input_text: str, generation: int,
                 batch: int | None = None) -> None:
        """On a worker thread: trace and post the result; never raises (errors are shown).
        batch: also a training step's saved bytes (0: at the input's own batch)."""
        inspection, error = None, None
        try:
            from tui_nn.shapes import inspect_model
            from tui_nn.shapes.memory import MemoryRequest
            from tui_nn.tui.bridge import in_fresh_thread

            target = self._model_cache.get(source, source)
            memory = MemoryRequest(batch_size=batch or None) if batch is not None else None
            inspection = in_fresh_thread(
                lambda: inspect_model(target, input_text.strip() or None, memory=memory),
                "tui-nn-inspect")
        except Exception as exc:  # noqa: BLE001 - every failure is shown in the pane
            error = first_line(exc)
        self.post_message(self.Inspected(source, input_text, inspection, error, generation))

    @on(Inspected)
    def _inspected(self, event: Inspected) -> None:
        if event.generation != self._generation:
            event.stop()  # a newer edit is already on its way: not worth showing or reporting
            return
        self._shown = event.generation
        self.error = event.error
        self.inspection = event.inspection
        self._show_assumed_input(event)
        if event.inspection is not None:
            self.depth = min(self.depth, max(self._max_depth(), 1))
        self._show_depth()
        self._fill_table()
        self._fill_diagnosis()
        # Not stopped: the screen hears about it too (verdict in the log, tests).

    def _show_assumed_input(self, event: Inspected) -> None:
        """With nothing typed, the input the first layer asked for shows as the placeholder
        (the note below the table says how it was chosen)."""
        field = self.query_one("#input-shape", Input)
        insp = event.inspection
        if insp is not None and not event.input_text.strip() and insp.input_shapes:
            field.placeholder = "x".join(str(d) for d in insp.input_shapes[0][1:])
        else:
            field.placeholder = PLACEHOLDER

    @property
    def pending(self) -> bool:
        """An inspection is scheduled or running and not yet shown."""
        return self._debounce is not None or self._shown != self._generation

    # ---- rendering ---------------------------------------------------------------------------
    def _max_depth(self) -> int:
        if self.inspection is None:
            return 1
        return max((r.depth for r in self.inspection.all_rows), default=1)

    def _show_depth(self) -> None:
        if not self._ready:
            return
        self.query_one("#depth-label", Label).update(
            f"depth {self.depth}/{self._max_depth()} [dim](+/-)[/]")

    def _rows(self) -> list["LayerRow"]:
        if self.inspection is None:
            return []
        rows = [r for r in self.inspection.all_rows if r.depth <= self.depth]
        if self.by_saved and self.inspection.memory is not None:
            rows.sort(key=lambda r: -r.saved_bytes)  # stable: forward order among equals
        return rows

    def _available_width(self) -> int:
        """Cells the table can show without scrolling sideways (a vertical scrollbar, when the
        rows need one, takes its share)."""
        table = self.query_one("#layers", DataTable)
        width = self.content_region.width
        rows = len(self._rows()) + 1  # + the header
        if table.size.height and rows > table.size.height:
            width -= table.styles.scrollbar_size_vertical
        return width

    def _fill_table(self) -> None:
        if not self._ready:
            return
        table = self.query_one("#layers", DataTable)
        cursor = table.cursor_row
        table.clear(columns=True)
        insp = self.inspection
        if insp is None:
            self._add_columns(table)
            return
        # Explicit widths that fit this model's rows: DataTable's automatic widths are worked
        # out later, when idle, and a frame drawn before that shows cut-off columns.
        self._laid_out_for = self._available_width()
        layout = fit(insp, self._rows(), self._laid_out_for)
        self._add_columns(table, layout)
        for key, cells in layout.rows:
            table.add_row(*(render_cell(c, w, col) for c, w, col
                            in zip(cells, layout.widths, layout.columns)), key=key)
        if table.row_count:
            table.move_cursor(row=min(max(cursor, 0), table.row_count - 1))

    def _fill_diagnosis(self) -> None:
        summary = self.query_one("#inspector-summary", Static)
        verdict = self.query_one("#verdict", Label)
        diagnosis = self.query_one("#diagnosis", Static)
        insp = self.inspection
        if self.error is not None or insp is None:
            summary.update("")
            verdict.update("[b red]✗[/]")
            diagnosis.update(Text.assemble(("✗ ", "bold red"),
                                           self.error or "no inspection"))
            self.set_class(True, "-problem")
            return
        t = insp.totals
        out_shapes = insp.all_rows[0].output_shapes if insp.all_rows else []
        inputs = ", ".join(map(format_shape, insp.input_shapes))
        if not self.input_text.strip() and any(n.startswith("assumed ") for n in insp.notes):
            inputs += " (assumed)"  # guessed from the first layer: the note below says how
        summary.update(Text.assemble(
            (insp.model_name, "bold"),
            f"  in {inputs} → out {shape_text(out_shapes) or '?'}  ·  "
            f"{t.params:,} params  ·  {t.mult_adds / 1e6:.2f} M mult-adds"))
        lines: list[str] = []
        d = insp.diagnosis
        for check in insp.checks:
            mark = "[green]✓[/]" if check.ok else "[b red]✗[/]"
            lines.append(f"{mark} {_escape(check.path)}: {_escape(check.text)}")
            if not check.ok and check.fix and (d is None or d.path != check.path):
                lines.append(f"   [b]fix:[/b] {_escape(check.fix)}")
        if d is not None:
            where = d.path or insp.model_name
            lines.append(f"[b red]✗ {_escape(where)} ({_escape(d.type)}):[/] "
                         f"{_escape(d.message)}")
            if d.fixes:
                lines.append(f"   [b]fix:[/b] {_escape(d.fix)}")
            if d.error and d.error not in d.message:
                lines.append(f"   [dim]{_escape(d.error)}[/]")
        if insp.solver is not None and insp.solver.working:
            ranges = ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in insp.solver.ranges())
            lines.append(f"[dim]square sizes that work: {ranges}[/]")
        # Never a silent 0: what the mult-adds leave out (after a mismatch the trace stopped
        # early and the diagnosis needs the room).
        if insp.not_counted and insp.ok:
            # Here, not at the top: tui_nn.shapes imports torch, which the first frame waits
            # for only when it is already loaded.
            from tui_nn.shapes.uncounted import short_summary
            lines.append(f"[dim]not counted: {_escape(short_summary(insp.not_counted))} ops[/]")
        for note in insp.notes:
            lines.append(f"[dim]{_escape(note)}[/]")
        ok = insp.ok
        verdict.update("[b green]✓ fits[/]" if ok else "[b red]✗ mismatch[/]")
        diagnosis.update("\n".join(lines) if lines else "[green]✓[/] every layer fits")
        self.set_class(not ok, "-problem")

    @on(DataTable.RowHighlighted, "#layers")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        detail = self.query_one("#row-detail", Static)
        insp = self.inspection
        if insp is None or event.row_key is None or event.row_key.value is None:
            detail.update("")
            return
        index = int(event.row_key.value)
        row = next((r for r in insp.all_rows if r.index == index), None)
        if row is None:
            detail.update("")
            return
        parts = [f"[b]{_escape(row.path or row.type)}[/b] {_escape(row.detail or row.type)}"]
        if row.input_shapes:
            shapes = ", ".join(map(format_shape, row.input_shapes))
            parts.append(f"in {_escape(shapes)}")
        text = "  ".join(parts)
        for f in row.arithmetic:
            text += f"\n{_escape(f.text)}"
        detail.update(text)
