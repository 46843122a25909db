"""Live plotext curves: training loss per step (raw + debiased EMA), validation loss and the
validation metric per epoch, on one shared step axis.

Plots read a bounded snapshot of the RunHistory at render time (at most 2× the plot width in
points), and redraw at most ``REDRAW_HZ`` times a second and only when the history changed:
the cost of a redraw does not grow with the length of the run. plotext rebuilds the whole
figure (drawn into strips from its cell matrix: plot_visual), so redraws are also paced by
their measured cost: the loss plot redraws at most every MIN_REDRAW_S and at most
REDRAW_BUDGET of a core; the metric plot only when an epoch ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Label

from tui_nn.tui.history import HistorySnapshot, Point, RunHistory, ema
from tui_nn.tui.widgets.plot_visual import MatrixPlot

MIN_REDRAW_S = 0.45  # at most about two redraws a second per plot
REDRAW_BUDGET = 0.04  # and at most this share of one core spent rebuilding plots
SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)

TRAIN_RAW = (110, 110, 110)
TRAIN_SMOOTH = "cyan+"
VAL = "orange+"
METRIC = "green+"
EXTRA = ("magenta+", "yellow+", "blue+", "red+")  # a step plugin's curves (GAN: D, G)


# plotext computes its axis from max - min: values near ±1e308 overflow that to inf and then
# NaN ("cannot convert float NaN to integer"). Beyond this a curve is drawn at the limit.
PLOT_LIMIT = 1e12
CLIPPED_NOTE = f"values beyond ±{PLOT_LIMIT:.0e} drawn clipped"
ACCURACY_CLIPPED_NOTE = "accuracies outside 0-100 % drawn clipped"


def clip_finite(xs: list[float],
                ys: list[float]) -> tuple[list[float], list[float], bool]:
    """(xs, ys) without the non-finite points, each y clipped to ±PLOT_LIMIT, and whether any
    was clipped (the plot then says so)."""
    pairs = [(x, y) for x, y in zip(xs, ys) if math.isfinite(y)]
    clipped = any(abs(y) > PLOT_LIMIT for _, y in pairs)
    if clipped:
        pairs = [(x, max(-PLOT_LIMIT, min(PLOT_LIMIT, y))) for x, y in pairs]
    return [p[0] for p in pairs], [p[1] for p in pairs], clipped


def step_along(steps: Sequence[float], current: float, direction: int) -> float:
    """The step ``direction`` places from the one nearest ``current``, stopping at the ends
    (the smoothing keys, the landscape lesson's lr keys)."""
    i = min(range(len(steps)), key=lambda k: abs(steps[k] - current))
    return steps[min(max(i + direction, 0), len(steps) - 1)]


def step_ticks(left: float, right: float, width: int) -> tuple[list[float], list[str]]:
    """Round step numbers for the shared x axis: 1/2/5 × 10^k apart, about one per 10 cells,
    labelled 1500 -> '1.5k'."""
    span = max(right - left, 1.0)
    want = max(2, min(8, width // 10))
    raw = span / want
    magnitude = 10 ** math.floor(math.log10(raw))
    candidates = [m * magnitude for m in (1, 2, 5, 10, 20)]
    fitting = [c for c in candidates if span / c <= want + 1]  # no more ticks than room
    step = max(min(fitting, key=lambda c: abs(math.log(c / raw))), 1)
    ticks = []
    x = math.ceil(left / step) * step
    while x <= right + 1e-9:
        ticks.append(x)
        x += step
    return ticks, [_tick_label(t) for t in ticks]


def _tick_label(x: float) -> str:
    if abs(x) >= 1_000_000:
        return f"{x / 1e6:g}M"
    if abs(x) >= 1000:
        return f"{x / 1e3:g}k"
    return f"{x:g}"


def compact_y_ticks(lo: float, hi: float, count: int = 5) -> tuple[list[float], list[str]] | None:
    """Labels like '8.02e+37' instead of plotext's 38-digit ones, for values so large or so
    small that plotext's own labels would eat the plot (a diverging loss); None otherwise."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    big = max(abs(lo), abs(hi))
    if big < 1e5 and (big == 0 or big >= 1e-3):
        return None
    if hi <= lo:
        return [lo], [f"{lo:.3g}"]
    ticks = [lo + (hi - lo) * i / (count - 1) for i in range(count)]
    return ticks, [f"{t:.3g}" for t in ticks]


def step_axes(plt, ys: list[float], left: float, right: float, width: int,
              note: str | None) -> None:
    """How a plot on the shared step axis ends: short labels for huge values (compact_y_ticks),
    ``note`` under it, its frame, and round step ticks from left to right."""
    ticks = compact_y_ticks(min(ys), max(ys)) if ys else None
    if ticks is not None:
        plt.yticks(*ticks)
    if note:
        plt.xlabel(note)
    plt.frame(True)
    plt.xlim(left, right)
    plt.xticks(*step_ticks(left, right, width))


def _clip(snap: HistorySnapshot, x_min: float) -> HistorySnapshot:
    """The points right of x_min: plotext raises IndexError drawing the legend of a labelled
    series with no point inside the x range."""
    def right(points: list[Point]) -> list[Point]:
        return [p for p in points if p.x >= x_min]

    return replace(snap, train=right(snap.train), val_loss=right(snap.val_loss),
                   val_metric=right(snap.val_metric),
                   extra={name: right(points) for name, points in snap.extra.items()})


class _HistoryPlot(MatrixPlot):
    """A plot that draws itself from a RunHistory snapshot each time it renders."""

    x_max: reactive[int] = reactive(0)
    """Right end of the shared step axis (the run's total steps; 0 = fit the data)."""

    x_min: reactive[int] = reactive(0)
    """Left end of the shared step axis (the first step of this session)."""

    def __init__(self, history: RunHistory, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history = history
        self.redraws = 0  # how many times the figure was rebuilt (tests, benchmark)
        self.render_s = 0.0  # smoothed cost of one rebuild, seconds
        self.drawn_at = 0.0  # monotonic time of the last rebuild

    def render(self):
        t0 = time.perf_counter()
        try:
            return self._render_plot()
        finally:
            cost = time.perf_counter() - t0
            self.render_s = cost if not self.redraws else 0.7 * self.render_s + 0.3 * cost
            self.drawn_at = time.monotonic()

    def due(self) -> bool:
        """Enough time has passed since the last rebuild, given what a rebuild costs."""
        wait = max(MIN_REDRAW_S, self.render_s / REDRAW_BUDGET)
        return time.monotonic() - self.drawn_at >= wait

    def _render_plot(self):
        plt = self.plt
        plt.clear_figure()
        width = max(self.size.width, 10)
        snap = self.history.snapshot(max_points=2 * width)
        if self.x_min:
            snap = _clip(snap, self.x_min)
        self._ys: list[float] = []
        self.clipped, self.clip_note = False, CLIPPED_NOTE
        self.draw(plt, snap)
        right = max(self.x_max, snap.last_step, self.x_min + 1)
        step_axes(plt, self._ys, self.x_min, right, width, self.clip_note if self.clipped else None)
        self.redraws += 1
        return super().render()

    def draw(self, plt, snap: HistorySnapshot) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finite(self, xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
        fx, fy, clipped = clip_finite(xs, ys)
        self.clipped = self.clipped or clipped
        return fx, fy


class LossPlot(_HistoryPlot):
    """Training loss per step (raw, grey; smoothed, cyan) and validation loss per epoch."""

    smoothing: reactive[float] = reactive(0.6)
    """EMA weight in [0, 1): 0 shows the raw loss, 0.99 a very smooth curve."""

    log_scale: reactive[bool] = reactive(False)
    """Plot the loss on a log10 axis."""

    def draw(self, plt, snap: HistorySnapshot) -> None:
        self._draw_train(plt, snap)
        self._draw_extra(plt, snap)
        self._draw_val(plt, snap)

    def _log(self, ys: list[float]) -> list[float]:
        if not self.log_scale:
            return ys
        return [math.log10(y) if y > 0 else float("nan") for y in ys]

    def _draw_extra(self, plt, snap: HistorySnapshot) -> None:
        """A step plugin's curves (the GAN's D and G losses), smoothed like the loss."""
        for (name, points), color in zip(sorted(snap.extra.items()), EXTRA):
            if not points:
                continue
            ex, ey = self._finite([p.x for p in points], self._log(ema(points, self.smoothing)))
            if ex:
                self._ys += ey
                plt.plot(ex, ey, marker="braille", color=color, label=name)

    def _draw_train(self, plt, snap: HistorySnapshot) -> None:
        title = "loss"
        if self.smoothing:
            title += f" (smoothing {self.smoothing:g})"
        if self.log_scale:
            title += " log"
        plt.title(title)
        if snap.train:
            xs = [p.x for p in snap.train]
            raw = self._log([p.y for p in snap.train])
            smooth = self._log(ema(snap.train, self.smoothing))
            if self.smoothing:
                rx, ry = self._finite(xs, raw)
                self._ys += ry
                plt.plot(rx, ry, marker="braille", color=TRAIN_RAW)
            sx, sy = self._finite(xs, smooth)
            self._ys += sy
            plt.plot(sx, sy, marker="braille", color=TRAIN_SMOOTH, label="train")

    def _draw_val(self, plt, snap: HistorySnapshot) -> None:
        if snap.val_loss:
            fx, fy = self._finite([p.x for p in snap.val_loss],
                                  self._log([p.y for p in snap.val_loss]))
            self._ys += fy
            if fx:
                plt.plot(fx, fy, marker="braille", color=VAL, label="val")
                plt.scatter(fx, fy, marker="●", color=VAL)


class MetricPlot(_HistoryPlot):
    """The validation metric per epoch: accuracy in %, or MSE for regression."""

    def draw(self, plt, snap: HistorySnapshot) -> None:
        accuracy = snap.metric == "accuracy"
        if not snap.val_metric and not snap.train:
            plt.title("val metric (per epoch)")
        else:
            plt.title("val accuracy %" if accuracy else f"val {snap.metric}")
        if snap.val_metric:
            xs = [p.x for p in snap.val_metric]
            ys = [p.y for p in snap.val_metric]
            if accuracy:
                # Drawn on 0-100 %: a value out of it is clipped to it (plotext fills a line
                # to a point far outside its y limits cell by cell: memory without bound).
                ys = [min(max(y * 100, 0.0), 100.0) if math.isfinite(y) else y for y in ys]
                if any(math.isfinite(p.y) and not 0 <= p.y <= 1 for p in snap.val_metric):
                    self.clipped, self.clip_note = True, ACCURACY_CLIPPED_NOTE
            fx, fy = self._finite(xs, ys)
            self._ys += fy
            if fx:
                plt.plot(fx, fy, marker="braille", color=METRIC)
                plt.scatter(fx, fy, marker="●", color=METRIC)
                if accuracy:
                    plt.ylim(max(0.0, min(fy) - 5), min(100.0, max(fy) + 5))


class Curves(Vertical):
    """Both plots plus the smoothing control; redraws only when data changed, paced by cost."""

    _ready = False  # set in on_mount: widgets exist from then on

    @dataclass
    class SmoothingChanged(Message):
        """The user changed the smoothing weight."""

        smoothing: float

    smoothing: reactive[float] = reactive(0.6)
    """EMA weight applied to the training loss curve."""

    log_scale: reactive[bool] = reactive(False)
    """Whether the loss axis is logarithmic."""

    live: reactive[bool] = reactive(False)
    """True while a run is in progress (the screen calls tick() on its frame timer)."""

    def __init__(self, history: RunHistory, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history = history
        self._drawn_train = -1
        self._drawn_val = -1

    def compose(self) -> ComposeResult:
        with Horizontal(id="curves-plots"):
            yield LossPlot(self.history, id="loss-plot").data_bind(
                Curves.smoothing, Curves.log_scale)
            yield MetricPlot(self.history, id="metric-plot")
        yield Label(self._caption(), id="curves-caption")

    def on_mount(self) -> None:
        self._ready = True
        self._update_caption()

    def watch_live(self, live: bool) -> None:
        if not live:
            self.redraw()  # the final state, whatever the pacing said

    def _caption(self) -> str:
        return (f"smoothing {self.smoothing:g} [dim]([b]\\[[/b] / [b]][/b])[/]   "
                f"log axis {'on' if self.log_scale else 'off'} [dim]([b]g[/b])[/]")

    def _update_caption(self) -> None:
        if self._ready:
            self.query_one("#curves-caption", Label).update(self._caption())

    watch_smoothing = watch_log_scale = _update_caption

    def set_axis(self, first_step: int, total_steps: int) -> None:
        for plot in self.query(_HistoryPlot):
            plot.x_min = first_step
            plot.x_max = total_steps

    def redraw(self) -> None:
        """Redraw both plots now (a new run started, the run ended)."""
        self._drawn_train = self.history.train_version
        self._drawn_val = self.history.val_version
        for plot in self.query(_HistoryPlot):
            plot.refresh()

    def tick(self) -> None:
        """Redraw what has new data, if its pacing allows (called on the screen's frame)."""
        history = self.history
        train, val = history.train_version, history.val_version
        loss_plot = self.query_one(LossPlot)
        if not loss_plot.due():
            return
        if val != self._drawn_val:  # an epoch ended: both plots have something new
            if self.query_one(MetricPlot).due():
                self.redraw()
        elif train != self._drawn_train:
            self._drawn_train = train
            loss_plot.refresh()

    def cycle_smoothing(self, direction: int) -> None:
        self.smoothing = step_along(SMOOTHING_STEPS, self.smoothing, direction)
        self.post_message(self.SmoothingChanged(self.smoothing))
