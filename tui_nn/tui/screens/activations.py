"""Activation functions and their derivatives on one plotext plot: the seed's sigmoid / tanh /
ReLU / softplus figure plus leaky ReLU, PReLU and GELU, with dy/dx from autograd.

Keys: d cycles what is drawn (f, f', both), 1-7 toggle each function, a shows all. The same
curves as `tui-nn plot activations` (insight.activations.activation_curves, same grid and
marker letters in the legend), so the app and the terminal command cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Footer, Header, Static

from tui_nn.tui.screens.lesson_base import LessonScreen
from tui_nn.tui.widgets.plot_visual import FigurePlot

if TYPE_CHECKING:
    from tui_nn.insight.activations import ActivationCurve

# One colour per function; the legend also shows plot_cmd's marker letter.
COLORS = {"sigmoid": "cyan+", "tanh": "orange+", "relu": "green+", "leaky_relu": "magenta+",
          "prelu": "red+", "softplus": "blue+", "gelu": "yellow+"}
MODES = ("f", "df", "both")
LEGEND_MIN_WIDTH = 56
MODE_TITLES = {"f": "activation functions f(x)", "df": "derivatives f'(x) (autograd)",
               "both": "f(x) solid, f'(x) dotted"}


@dataclass
class CurvesReady(Message):
    curves: list["ActivationCurve"]


class ActivationsScreen(LessonScreen):
    """The seven activation functions, their derivatives, and why sigmoid stacks vanish."""

    DEFAULT_CSS = """
    ActivationsScreen #act-row { height: 1fr; }
    ActivationsScreen #act-plot { width: 1fr; height: 1fr; }
    ActivationsScreen #act-side { width: 36; height: 1fr; padding: 0 0 0 1; }
    ActivationsScreen.-narrow #act-side { width: 32; }
    ActivationsScreen #act-table { height: auto; max-height: 9; }
    ActivationsScreen #act-note { height: auto; color: $text-muted; }
    ActivationsScreen #act-mode { height: 1; }
    ActivationsScreen #act-formula { height: auto; margin: 0 0 1 0; }
    """

    BINDINGS = [
        Binding("d", "cycle_mode", "f / f' / both"),
        Binding("a", "show_all", "All"),
        *[Binding(str(i + 1), f"toggle({i})", f"Toggle {i + 1}", show=False) for i in range(7)],
    ]

    mode: reactive[str] = reactive("f")
    """What is drawn: 'f' the functions, 'df' their derivatives, 'both'."""

    def __init__(self) -> None:
        super().__init__()
        self.curves: list[ActivationCurve] = []
        self.hidden: set[str] = set()
        self.drawn: list[tuple[str, str]] = []  # (name, 'y'|'dy') of each series in the plot

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with Horizontal(id="act-row"):
            yield FigurePlot(self._draw, id="act-plot")
            with Vertical(id="act-side"):
                yield Static("", id="act-mode")
                yield DataTable(id="act-table", cursor_type="row", zebra_stripes=False)
                yield Static("", id="act-formula")
                yield Static("[b]1[/]-[b]7[/] toggle a function, [b]a[/] all, [b]d[/] f / f' / "
                             "both.\nsigmoid's slope is at most 0.25: a stack of sigmoids "
                             "multiplies the gradient by ≤ 0.25 per layer, so the first "
                             "layers barely learn (vanishing gradients). ReLU's slope is 1.",
                             id="act-note")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "activation functions"
        table = self.query_one("#act-table", DataTable)
        table.add_columns("", "function", "max f'")
        self._update_mode()
        self._compute()

    @work(thread=True, name="activations", exit_on_error=False)
    def _compute(self) -> None:
        # On a thread: the first use of torch may import it (seconds).
        from tui_nn.insight.activations import activation_curves

        self.post_message(CurvesReady(activation_curves()))

    @on(CurvesReady)
    def _ready(self, event: CurvesReady) -> None:
        self.curves = event.curves
        self._fill_table()
        self.query_one("#act-plot").refresh()
        self.query_one("#act-table").focus()

    def _fill_table(self) -> None:
        from tui_nn.insight.activations import MARKERS

        table = self.query_one("#act-table", DataTable)
        table.clear()
        for i, c in enumerate(self.curves):
            on_ = c.name not in self.hidden
            color = COLORS.get(c.name, "white").rstrip("+")
            mark = f"[{color}]■[/]" if on_ else "[dim]□[/]"
            name = f"{i + 1} {c.name} ({MARKERS.get(c.name, '·')})"
            table.add_row(mark, name if on_ else f"[dim]{name}[/]", f"{c.max_slope:.3g}",
                          key=c.name)

    def _draw(self, plt, width: int, height: int) -> None:
        self.drawn = []
        plt.title(MODE_TITLES[self.mode])
        plt.xlabel("x")
        if not self.curves:
            plt.title("computing…")
            return
        fields = {"f": ("y",), "df": ("dy",), "both": ("y", "dy")}[self.mode]
        # plotext's legend sits inside the plot: on a narrow plot it would hide the curves,
        # and the table beside it already names each colour.
        legend = width >= LEGEND_MIN_WIDTH
        # Drawn last is drawn on top: reversed, as `tui-nn plot activations` does.
        for c in reversed(self.curves):
            if c.name in self.hidden:
                continue
            for field in fields:
                marker = "braille" if field == "y" or self.mode != "both" else "dot"
                label = c.name if legend and (field == "y" or self.mode == "df") else None
                plt.plot(c.x, getattr(c, field), marker=marker, color=COLORS.get(c.name),
                         label=label)
                self.drawn.append((c.name, field))
        plt.hline(0.0, "gray")

    def _update_mode(self) -> None:
        label = {"f": "[b]f[/] / f' / both", "df": "f / [b]f'[/] / both",
                 "both": "f / f' / [b]both[/]"}[self.mode]
        self.query_one("#act-mode", Static).update(f"showing {label}  ([b]d[/])")

    def watch_mode(self) -> None:
        if self.is_mounted:
            self._update_mode()
            self.query_one("#act-plot").refresh()

    def action_cycle_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]

    def action_toggle(self, index: int) -> None:
        if index >= len(self.curves):
            return
        name = self.curves[index].name
        self.hidden.symmetric_difference_update({name})
        self._fill_table()
        self.query_one("#act-plot").refresh()

    def action_show_all(self) -> None:
        self.hidden.clear()
        self._fill_table()
        self.query_one("#act-plot").refresh()

    @on(DataTable.RowHighlighted, "#act-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        curve = next((c for c in self.curves if c.name == event.row_key.value), None)
        if curve is not None:
            self.query_one("#act-formula", Static).update(
                f"[b]{curve.name}[/] = {escape(curve.formula)}  [dim](Enter toggles)[/]")

    @on(DataTable.RowSelected, "#act-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        names = [c.name for c in self.curves]
        if event.row_key.value in names:
            self.action_toggle(names.index(event.row_key.value))
            self.query_one("#act-table", DataTable).move_cursor(row=event.cursor_row)
