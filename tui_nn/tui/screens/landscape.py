"""The seed's first lesson, animated: the MSE of y = w·x (+ b) on x = 1, 2, 3 / y = 2, 4, 6 and
gradient descent, SGD and mini-batch SGD walking down it one epoch per frame.

Two views (v switches): MSE against w for the seed's model y = w·x, and a w×b heat map of
y = w·x + b with the same three methods learning both weights. Keys: space pause/play,
n / → one epoch on, b / ← one back, r restart, e the end, + / - the learning rate.

Everything here is plain Python on three points (insight.landscape): recomputing the paths
for a new learning rate takes well under a millisecond, so it happens on the UI thread.
"""

from __future__ import annotations

import math
import time

from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Footer, Header, Static

from tui_nn.fmt import fmt_loss
from tui_nn.insight.landscape import (METHODS, DescentPath, default_b_grid, default_w_grid,
                                      descent_paths, mse, mse_curve)
from tui_nn.tui.screens.lesson_base import LessonScreen
from tui_nn.tui.widgets.curves import step_along
from tui_nn.tui.widgets.plot_visual import FigurePlot

# One epoch per frame: the seed's 100 epochs play in 20 s. A frame costs ~10-50 ms on a busy
# 2-core box (plotext rebuilds the figure; benchmarks/bench_lesson_views.py), so 5 frames a
# second keep the animation under a quarter of a core; while a training run is in progress
# it slows to the main screen's FRAME_S, so the run keeps its throughput.
TICK_S = 0.2
TRAINING_TICK_S = 1.0
EPOCHS = 100
LR_STEPS = (0.001, 0.003, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25)
DEFAULT_LR = 0.01  # the seed's
COLORS = {"gd": "cyan+", "sgd": "orange+", "minibatch": "magenta+"}
RICH_COLORS = {"gd": "bright_cyan", "sgd": "dark_orange", "minibatch": "bright_magenta"}
LETTERS = {"gd": "G", "sgd": "S", "minibatch": "M"}
SHORT = {"gd": "GD", "sgd": "SGD", "minibatch": "mini-batch"}


class HeatMap(Widget):
    """MSE(w, b) as background colours (log scale), with each method's path drawn on top:
    dots where it has been, its letter where it is now, + at the minimum (w=2, b=0).

    Line API: the rows are built as Strips of one Segment per cell from cached Styles (the
    background depends only on the size), so a frame costs about a millisecond; building a
    Rich Text of coloured characters instead cost ~45 ms per frame at 100×30.
    """

    DEFAULT_CSS = "HeatMap { width: 1fr; height: 1fr; }"
    LABEL_W = 6
    _strips: "list[Strip] | None" = None  # the built lines; None: build on the next render

    def __init__(self, screen: "LandscapeScreen", **kwargs) -> None:
        super().__init__(**kwargs)
        self.lesson = screen
        self.w_range = (default_w_grid()[0], default_w_grid()[-1])
        self.b_range = (default_b_grid()[0], default_b_grid()[-1])
        self._bg: tuple[tuple[int, int], list[list[Style]]] | None = None
        self._styles: dict[tuple[int, str], Style] = {}

    def _cell(self, w: float, b: float, cols: int, rows: int) -> tuple[int, int] | None:
        (w0, w1), (b0, b1) = self.w_range, self.b_range
        if not (math.isfinite(w) and math.isfinite(b)):
            return None
        c = round((w - w0) / (w1 - w0) * (cols - 1))
        r = round((b1 - b) / (b1 - b0) * (rows - 1))  # b grows upwards
        return (c, r) if 0 <= c < cols and 0 <= r < rows else None

    def _background(self, cols: int, rows: int) -> list[list[Style]]:
        """The colour of each cell; cached per size (only the paths change between frames)."""
        if self._bg is not None and self._bg[0] == (cols, rows):
            return self._bg[1]
        (w0, w1), (b0, b1) = self.w_range, self.b_range
        values = [[math.log10(1 + mse(w0 + (w1 - w0) * c / max(cols - 1, 1),
                                      b1 - (b1 - b0) * r / max(rows - 1, 1)))
                   for c in range(cols)] for r in range(rows)]
        lo = min(min(row) for row in values)
        hi = max(max(row) for row in values)
        ramp = [Style(bgcolor=_ramp(i / 31)) for i in range(32)]  # 32 shades, shared Styles
        styles = [[ramp[round((v - lo) / (hi - lo or 1) * 31)] for v in row] for row in values]
        self._bg = ((cols, rows), styles)
        self._styles.clear()
        return styles

    def _over(self, bg: Style, color: str) -> Style:
        key = (id(bg), color)
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = bg + Style(color=color, bold=True)
        return style

    def refresh(self, *args, **kwargs):
        self._strips = None
        return super().refresh(*args, **kwargs)

    def build(self) -> list[Strip]:
        """Every line of the map (rows of cells, then the w axis)."""
        width = self.size.width
        cols = max(width - self.LABEL_W, 4)
        rows = max(self.size.height - 1, 2)  # the last line is the w axis
        bg = self._background(cols, rows)
        chars = [[" "] * cols for _ in range(rows)]
        colors: list[list[str | None]] = [[None] * cols for _ in range(rows)]
        best = self._cell(2.0, 0.0, cols, rows)
        if best:
            chars[best[1]][best[0]] = "+"
            colors[best[1]][best[0]] = "white"
        lesson = self.lesson
        for method in METHODS:
            path = lesson.paths2d.get(method)
            if path is None or method in lesson.hidden:
                continue
            upto = min(lesson.t, len(path.w) - 1)
            for i in range(upto + 1):
                cell = self._cell(path.w[i], path.b[i], cols, rows)
                if cell is None:
                    continue
                c, r = cell
                if i == upto:
                    chars[r][c] = LETTERS[method]
                elif chars[r][c] == " ":
                    chars[r][c] = "·"
                colors[r][c] = RICH_COLORS[method]
        dim = Style(dim=True)
        (w0, w1), (b0, b1) = self.w_range, self.b_range
        strips = []
        for r in range(rows):
            b = b1 - (b1 - b0) * r / max(rows - 1, 1)
            show = r in (0, rows - 1, (rows - 1) // 2)
            segments = [Segment(f"{b:+5.1f} " if show else " " * self.LABEL_W, dim)]
            row_bg, row_chars, row_colors = bg[r], chars[r], colors[r]
            for c in range(cols):
                color = row_colors[c]
                style = row_bg[c] if color is None else self._over(row_bg[c], color)
                segments.append(Segment(row_chars[c], style))
            strips.append(Strip(segments, self.LABEL_W + cols).simplify())
        axis = [" "] * cols
        for w in (w0, (w0 + w1) / 2, w1):
            c = round((w - w0) / (w1 - w0) * (cols - 1))
            label = f"w={w:g}"
            start = min(max(c - len(label) // 2, 0), cols - len(label))
            axis[start:start + len(label)] = list(label)
        strips.append(Strip([Segment("b".rjust(self.LABEL_W - 1) + " " + "".join(axis), dim)],
                            self.LABEL_W + cols))
        return strips

    def render_line(self, y: int) -> Strip:
        if self._strips is None or len(self._strips) != max(self.size.height, 3):
            self._strips = self.build()
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)

    def text(self) -> str:
        """The map as plain text (tests)."""
        return "\n".join(strip.text for strip in self.build())

    def on_resize(self) -> None:
        self._bg = None
        self._strips = None


def _ramp(x: float) -> str:
    """Dark blue (low loss) through teal to warm yellow (high loss)."""
    x = min(max(x, 0.0), 1.0)
    stops = [(0.0, (10, 20, 60)), (0.35, (20, 90, 120)), (0.7, (120, 140, 60)),
             (1.0, (200, 160, 40))]
    for (x0, c0), (x1, c1) in zip(stops, stops[1:]):
        if x <= x1:
            f = (x - x0) / (x1 - x0)
            r, g, b = (round(a + (bb - a) * f) for a, bb in zip(c0, c1))
            return f"#{r:02x}{g:02x}{b:02x}"
    return "#c8a028"


class LandscapeScreen(LessonScreen):
    """MSE against w (or w×b) and three optimisers walking down it, one epoch a frame."""

    DEFAULT_CSS = """
    LandscapeScreen #land-status { height: 1; padding: 0 1; }
    LandscapeScreen #land-views { height: 1fr; }
    LandscapeScreen #land-plot { height: 1fr; }
    LandscapeScreen #land-heat { height: 1fr; display: none; }
    LandscapeScreen.-heat #land-plot { display: none; }
    LandscapeScreen.-heat #land-heat { display: block; }
    LandscapeScreen #land-table { height: auto; padding: 0 1; }
    """

    BINDINGS = [
        Binding("space", "toggle_play", "Play/pause"),
        Binding("n,right", "step(1)", "Step"),
        Binding("b,left", "step(-1)", "Back", show=False),
        Binding("r", "restart", "Restart"),
        Binding("e,end", "to_end", "End"),
        Binding("plus,equals_sign", "lr(1)", "lr+"),
        Binding("minus", "lr(-1)", "lr-"),
        Binding("v", "toggle_view", "w / w×b"),
        Binding("1", "toggle_method('gd')", "GD", show=False),
        Binding("2", "toggle_method('sgd')", "SGD", show=False),
        Binding("3", "toggle_method('minibatch')", "mini-batch", show=False),
    ]

    t: reactive[int] = reactive(0, init=False)
    """The epoch on screen (0 = the start, before any update)."""

    playing: reactive[bool] = reactive(True, init=False)

    view: reactive[str] = reactive("curve", init=False)
    """'curve' (MSE against w, model y = w·x) or 'heat' (w×b heat map, y = w·x + b)."""

    def __init__(self, lr: float = DEFAULT_LR, epochs: int = EPOCHS, *, autoplay: bool = True,
                 view: str = "curve") -> None:
        super().__init__()
        self.lr = lr
        self.epochs = epochs
        self.autoplay = autoplay
        self.hidden: set[str] = set()
        self.curve = mse_curve()
        self.paths: dict[str, DescentPath] = {}
        self.paths2d: dict[str, DescentPath] = {}
        self.set_reactive(LandscapeScreen.view, view)
        self._compute()

    def _compute(self) -> None:
        # Per epoch: every method has one point per epoch, so they animate side by side.
        self.paths = {m: p.per_epoch() for m, p in
                      descent_paths(lr=self.lr, epochs=self.epochs, seed=0).items()}
        self.paths2d = {m: p.per_epoch() for m, p in
                        descent_paths(lr=self.lr, epochs=self.epochs, seed=0,
                                      fit_bias=True).items()}

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        yield Static("", id="land-status")
        with Vertical(id="land-views"):
            yield FigurePlot(self._draw_curve, id="land-plot")
            yield HeatMap(self, id="land-heat")
        yield Static("", id="land-table")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "loss landscape"
        self.set_class(self.view == "heat", "-heat")
        self._last_tick = 0.0
        self._timer = self.set_interval(TICK_S, self._tick, pause=not self.autoplay)
        self.playing = self.autoplay
        self._show()

    # ---- animation ---------------------------------------------------------------------------
    def _tick(self) -> None:
        if self.t >= self.epochs:
            self.playing = False
            return
        now = time.monotonic()
        if self.training() and now - self._last_tick < 0.95 * TRAINING_TICK_S:
            return
        self._last_tick = now
        self.t += 1

    def training(self) -> bool:
        """A run is training in the background (the main screen's bridge)."""
        bridge = getattr(getattr(self.app, "main", None), "bridge", None)
        return bool(bridge is not None and bridge.running)

    def watch_playing(self, playing: bool) -> None:
        if playing and self.t >= self.epochs:
            self.t = 0  # play after the end: from the start
        if playing:
            self._timer.resume()
        else:
            self._timer.pause()
        self._show_status()

    def watch_view(self, view: str) -> None:
        self.set_class(view == "heat", "-heat")
        self._show()

    def action_toggle_play(self) -> None:
        self.playing = not self.playing

    def action_step(self, delta: int) -> None:
        self.playing = False
        self.t = min(max(self.t + delta, 0), self.epochs)

    def action_restart(self) -> None:
        self.t = 0
        self.playing = True

    def action_to_end(self) -> None:
        self.playing = False
        self.t = self.epochs

    def action_lr(self, direction: int) -> None:
        lr = step_along(LR_STEPS, self.lr, direction)
        if lr == self.lr:
            return
        self.lr = lr
        self._compute()
        self.t = 0
        self.playing = True
        self._show()

    def action_toggle_view(self) -> None:
        self.view = "heat" if self.view == "curve" else "curve"

    def action_toggle_method(self, method: str) -> None:
        self.hidden.symmetric_difference_update({method})
        self._show()

    # ---- drawing -----------------------------------------------------------------------------
    def at(self, method: str) -> tuple[float, float, float]:
        """(w, b, loss) of a method at the epoch on screen."""
        p = (self.paths2d if self.view == "heat" else self.paths)[method]
        i = min(self.t, len(p.w) - 1)
        return p.w[i], p.b[i], p.loss[i]

    def _show(self) -> None:
        if not self.is_mounted:
            return
        self._show_status()
        self._show_table()
        target = "#land-heat" if self.view == "heat" else "#land-plot"
        self.query_one(target).refresh()

    watch_t = _show

    def _show_status(self) -> None:
        model = "y = w·x + b" if self.view == "heat" else "y = w·x"
        state = "playing" if self.playing else ("end" if self.t >= self.epochs else "paused")
        if self.playing and self.training():
            state = "playing slowly (a run is training)"
        self.query_one("#land-status", Static).update(
            f"{model} on x=1,2,3 y=2,4,6 from w=1 · lr [b]{self.lr:g}[/] · "
            f"epoch [b]{self.t}[/]/{self.epochs} · {state}")

    def table_rows(self) -> list[tuple[str, str, str, str, str]]:
        """What the table under the plot shows: method, updates per epoch, w, b, loss."""
        heat = self.view == "heat"
        rows = []
        for m in METHODS:
            w, b, loss = self.at(m)
            per = {"gd": "1", "sgd": "3", "minibatch": "2"}[m]
            rows.append((SHORT[m], per, fmt_loss(w), fmt_loss(b) if heat else "-", fmt_loss(loss)))
        return rows

    def _show_table(self) -> None:
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=False)
        for col, just in (("method", "left"), ("updates/epoch", "right"), ("w", "right"),
                          ("b", "right"), ("MSE", "right")):
            table.add_column(col, justify=just, header_style="bold dim")
        for m, row in zip(METHODS, self.table_rows()):
            name = row[0] if m not in self.hidden else f"[dim]{row[0]} (hidden)[/]"
            table.add_row(f"[{RICH_COLORS[m]}]{LETTERS[m]}[/] {name}", *row[1:])
        self.query_one("#land-table", Static).update(table)

    def _draw_curve(self, plt, width: int, height: int) -> None:
        curve = self.curve
        w_lo, w_hi = curve.w[0], curve.w[-1]
        plt.plot(curve.w, curve.loss, marker="braille", color=(120, 120, 120))
        for m in reversed(METHODS):  # GD on top
            if m in self.hidden:
                continue
            p = self.paths[m]
            upto = min(self.t, len(p.w) - 1)
            pts = [(w, loss) for w, loss in zip(p.w[:upto], p.loss[:upto])
                   if w_lo <= w <= w_hi and math.isfinite(loss)]
            if pts:
                plt.scatter([q[0] for q in pts], [q[1] for q in pts], marker="dot",
                            color=COLORS[m])
            w, loss = p.w[upto], p.loss[upto]
            if w_lo <= w <= w_hi and math.isfinite(loss):
                # The legend sits inside the plot; on a narrow one it would hide the left
                # branch, and the table below says the same.
                label = f"{SHORT[m]} w={w:.3f}" if width >= 90 else None
                plt.scatter([w], [loss], marker=LETTERS[m], color=COLORS[m], label=label)
        plt.xlim(w_lo, w_hi)
        plt.ylim(0, max(curve.loss))
        plt.title("MSE against w (the seed's cost curve); dots: where each method has been")
        plt.xlabel("w")
