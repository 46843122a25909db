"""`tui-nn watch DIR` on a TensorBoard log directory of any framework (SummaryWriter,
Lightning's lightning_logs/version_N, Hugging Face): every scalar tag as a curve, one plot per
tag prefix (`train/`, `val/`, ...), and a tag picker to choose which tags are drawn.

A thread worker polls the directory (tui_nn.runs.tensorboard: only events appended since the
last poll are read) and posts the new points at most every POST_S; the screen keeps them per
tag and redraws the plots whose tags changed, at most twice a second, each from at most 2× the
plot width in points. Tags and problems come from files: made inert where they are decoded
(tui_nn.runs.tensorboard) and shown as Text, never markup. Nothing here writes into the log
directory.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header, SelectionList, Static
from textual.widgets.selection_list import Selection
from textual.worker import get_current_worker

from tui_nn.runs import tensorboard as tb
from tui_nn.textsafe import clean_line
from tui_nn.tui.viewer_app import ViewerApp
from tui_nn.tui.screens.worker_errors import NotifiesWorkerErrors
from tui_nn.tui.history import Point, ema
from tui_nn.tui.widgets.curves import (CLIPPED_NOTE, SMOOTHING_STEPS, clip_finite,
                                       step_along, step_axes)
from tui_nn.tui.widgets.plot_visual import MatrixPlot

POLL_S = 0.5
POST_S = 0.5
REDRAW_S = 0.5
STATUS_S = 2.0  # how often the writer's liveness is checked
DEFAULT_SHOWN = 8  # tags drawn without asking; the rest wait in the picker
MAX_TAGS = 1000  # a log with more distinct tags is not read further (one warning)
COLORS = ("cyan+", "orange+", "green+", "magenta+", "yellow+", "blue+", "red+", "white")
TAG_CHARS = 120
RAW = (110, 110, 110)  # the unsmoothed curve under a smoothed one, as in the Curves widget
SMOOTH_MIN_POINTS = 20  # sparser tags (one value an epoch) are drawn as they are


# Split names that group Lightning-style tags without a "/" ("train_loss", "val_acc").
SPLITS = ("train", "val", "valid", "validation", "eval", "test")
# Counters, not metrics: listed, but not drawn until picked (they would flatten the curves).
COUNTER_TAGS = {"epoch", "step", "global_step", "trainer/global_step", "train/epoch",
                "train/global_step"}


def tag_group(tag: str) -> str:
    """The prefix a tag is grouped under: "train/" for "train/loss", "val_" for "val_acc",
    "" for "epoch"."""
    head, sep, _ = tag.partition("/")
    if sep:
        return head + sep
    head, sep, _ = tag.partition("_")
    return head + sep if sep and head.lower() in SPLITS else ""


def tag_order(tag: str) -> tuple[int, str, str]:
    """Picker and plot order: train groups, then validation ones, then the rest, then the
    ungrouped tags."""
    group = tag_group(tag)
    word = group.rstrip("/_").lower()
    rank = 0 if word == "train" else 1 if word in SPLITS else 3 if not group else 2
    return rank, group, tag


class TagSeries:
    """The points of one tag, in step order, and a bounded view of them for a plot."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.values: list[float] = []
        self._ordered = True

    def add(self, step: int, value: float) -> None:
        if self.steps and step < self.steps[-1]:
            self._ordered = False  # a restarted run or a second event file: sort when drawn
        self.steps.append(step)
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.steps)

    def view(self, max_points: int) -> tuple[list[int], list[float]]:
        """At most about max_points finite points, evenly picked, always with the last one."""
        if not self._ordered:
            pairs = sorted(zip(self.steps, self.values), key=lambda p: p[0])
            self.steps, self.values = [p[0] for p in pairs], [p[1] for p in pairs]
            self._ordered = True
        n = len(self.steps)
        stride = max(1, math.ceil(n / max(max_points, 2)))
        index = list(range(0, n, stride))
        if n and index[-1] != n - 1:
            index.append(n - 1)
        keep = [i for i in index if math.isfinite(self.values[i])]
        return [self.steps[i] for i in keep], [self.values[i] for i in keep]


class GroupPlot(MatrixPlot):
    """The selected tags of one prefix group on one step axis."""

    # One group fills the pane; several share it down to MIN rows each, then scroll.
    DEFAULT_CSS = "GroupPlot { height: 1fr; min-height: 11; }"

    def __init__(self, group: str, series: dict[str, TagSeries], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group = group
        self.series = series  # the screen's, shared: tag -> points
        self.tags: list[str] = []  # the selected tags of this group, in order
        self.log_scale = False
        self.smoothing = 0.6  # EMA weight for dense tags (TensorBoard's default)
        self.redraws = 0

    def render(self):
        plt = self.plt
        plt.clear_figure()
        width = max(self.size.width, 10)
        title = (self.group or "scalars")[:60] + (" (log)" if self.log_scale else "")
        if self.smoothing and any(len(self.series[t]) >= SMOOTH_MIN_POINTS for t in self.tags):
            title += f" · smoothing {self.smoothing:g}"
        plt.title(title)
        ys_all: list[float] = []
        right = 0
        self.clipped = False
        for i, tag in enumerate(self.tags):
            xs, ys = self._draw(plt, tag, COLORS[i % len(COLORS)], width)
            ys_all += ys
            right = max([right, *xs])
        # Every group on the same step axis, so train/ and val/ line up.
        right = max(right, getattr(self.screen, "last_step", 0), 1)
        step_axes(plt, ys_all, 0, right, width, CLIPPED_NOTE if self.clipped else None)
        self.redraws += 1
        return super().render()

    def _draw(self, plt, tag: str, color: str, width: int) -> tuple[list[int], list[float]]:
        """Plot one tag (raw in grey and smoothed in color when dense); the points drawn."""
        series = self.series[tag]
        xs, ys = series.view(2 * width)
        stride = max(1, len(series) // max(len(xs), 1))
        label = (tag[len(self.group):] or tag)[:40]
        lines = [(ys, color, label)]
        if self.smoothing and len(series) >= SMOOTH_MIN_POINTS and len(xs) > 1:
            points = [Point(x, y, y, y, stride) for x, y in zip(xs, ys)]
            lines = [(ys, RAW, None), (ema(points, self.smoothing), color, label)]
        drawn: list[float] = []
        for values, line_color, line_label in lines:
            if self.log_scale:  # a value ≤ 0 has no log: NaN, dropped by clip_finite
                values = [math.log10(y) if y > 0 else math.nan for y in values]
            px, py, clipped = clip_finite(xs, values)  # a float64 tensor can hold 1e308
            self.clipped = self.clipped or clipped
            if not px:
                continue
            marker = "braille" if len(px) > 1 else "●"
            plt.plot(px, py, marker=marker, color=line_color, label=line_label)
            drawn += py
        return xs, drawn


@dataclass
class ScalarsArrived(Message):
    """New points from the event files, and how recently a file was written."""

    points: list[tb.ScalarPoint]
    status: str
    first: bool


@dataclass
class LogProblem(Message):
    """An event file could not be read (further): said in the status line."""

    problem: str | None


class TensorBoardWatchScreen(NotifiesWorkerErrors, Screen):
    """One TensorBoard log directory, followed: a tag picker and one plot per tag prefix."""

    DEFAULT_CSS = """
    #tb-row { height: 1fr; }
    #tb-side { width: 34; height: 1fr; border-right: vkey $surface-lighten-2; }
    #tb-status { height: auto; padding: 0 1; }
    #tb-tags { height: 1fr; border: none; }
    #tb-plots { width: 1fr; height: 1fr; }
    #tb-empty { padding: 1 2; color: $text-muted; }
    """

    BINDINGS = [
        Binding("t", "focus_tags", "Tags"),
        Binding("a", "toggle_all", "All/none"),
        Binding("g", "toggle_log_scale", "Log axis"),
        Binding("left_square_bracket", "smoothing(-1)", "Less smoothing", show=False),
        Binding("right_square_bracket", "smoothing(1)", "More smoothing", show=False),
        Binding("escape", "back", "Back", show=False),
    ]

    def __init__(self, log_dir: str | Path, *, poll_s: float = POLL_S,
                 live_window_s: float | None = None) -> None:
        super().__init__()
        self.log_dir = Path(log_dir)
        self.shown_dir = clean_line(self.log_dir, 200)  # a path typed by the user
        self.poll_s = poll_s
        self.live_window_s = live_window_s
        self.series: dict[str, TagSeries] = {}  # tag -> points (tags inert from the follower)
        self.status = "loading"
        self.last_step = 0
        self.problem: str | None = None
        self.too_many_tags = False
        self._dirty: set[str] = set()  # groups with new points since their last redraw
        self._log_scale = False
        self._smoothing = 0.6

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with Horizontal(id="tb-row"):
            with Vertical(id="tb-side"):
                yield Static(id="tb-status")
                yield SelectionList[str](id="tb-tags")
            with VerticalScroll(id="tb-plots"):
                yield Static(Text("waiting for scalars…"), id="tb-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "tui-nn watch"
        self.sub_title = f"{Path(self.shown_dir).name[:60]} · TensorBoard log · read-only"
        self._show_status()
        self.set_interval(REDRAW_S, self._redraw_dirty)
        self._follow()

    # ---- the follower (thread: never touches a widget) -------------------------------------
    @work(thread=True, name="follow-tb", group="follow", exclusive=True, exit_on_error=False)
    def _follow(self) -> None:
        worker = get_current_worker()
        follower = tb.TensorBoardFollower(self.log_dir)
        pending: list[tb.ScalarPoint] = []
        last_post = 0.0
        first = True
        problem: str | None = None
        status, last_status = "loading", 0.0
        while not worker.is_cancelled:
            pending += follower.poll()
            if follower.problem != problem:
                problem = follower.problem
                self.post_message(LogProblem(problem))
            now = time.monotonic()
            if now - last_status >= STATUS_S:  # a stat of every event file: not every poll
                status, last_status = self._liveness(), now
            if first or (pending and now - last_post >= POST_S) or now - last_post >= STATUS_S:
                self.post_message(ScalarsArrived(pending, status, first))
                pending, last_post, first = [], now, False
            time.sleep(self.poll_s)

    def _liveness(self) -> str:
        if not tb.all_event_files(self.log_dir):
            return "no event files"
        return "running" if tb.is_live(self.log_dir, self.live_window_s) else "idle"

    # ---- applying points (UI thread) -------------------------------------------------------
    def on_log_problem(self, message: LogProblem) -> None:
        self.problem = message.problem
        self._show_status()

    def on_scalars_arrived(self, message: ScalarsArrived) -> None:
        self.status = message.status
        last_step = self.last_step
        new_tags: list[str] = []
        for p in message.points:
            series = self.series.get(p.tag)
            if series is None:
                if len(self.series) >= MAX_TAGS:
                    self.too_many_tags = True
                    continue
                series = self.series[p.tag] = TagSeries()
                new_tags.append(p.tag)
            series.add(p.step, p.value)
            self.last_step = max(self.last_step, p.step)
            self._dirty.add(tag_group(p.tag))
        if self.last_step != last_step:  # the shared step axis grew: every plot follows
            self._dirty.update(tag_group(t) for t in self.series)
        if new_tags:
            self._add_tags(new_tags)
        self._show_status()
        if message.first:
            self._redraw_dirty()

    def _add_tags(self, tags: list[str]) -> None:
        picker = self.query_one("#tb-tags", SelectionList)
        shown = len(picker.selected)
        for tag in sorted(tags, key=tag_order):
            select = shown < DEFAULT_SHOWN and tag not in COUNTER_TAGS
            shown += select
            picker.add_option(Selection(self._prompt(tag), tag, select))
        self._sort_picker(picker)
        self._layout_plots()

    @staticmethod
    def _prompt(tag: str) -> Text:
        group = tag_group(tag)
        text = Text(group[:TAG_CHARS], style="dim")
        text.append(tag[len(group):][:TAG_CHARS])
        return text

    def _sort_picker(self, picker: SelectionList) -> None:
        """Tags grouped by prefix: rebuilt in (group, tag) order, selections kept."""
        selected = set(picker.selected)
        tags = sorted(self.series, key=tag_order)
        if [picker.get_option_at_index(i).value for i in range(picker.option_count)] == tags:
            return
        highlighted = picker.highlighted
        with picker.prevent(SelectionList.SelectedChanged):
            picker.clear_options()
            picker.add_options([Selection(self._prompt(t), t, t in selected) for t in tags])
        if highlighted is not None and picker.option_count:
            picker.highlighted = min(highlighted, picker.option_count - 1)

    @on(SelectionList.SelectedChanged, "#tb-tags")
    def _selection_changed(self) -> None:
        self._layout_plots()

    def _layout_plots(self) -> None:
        """One GroupPlot per group with a selected tag, in group order."""
        selected = self.query_one("#tb-tags", SelectionList).selected
        wanted: dict[str, list[str]] = {}
        for tag in sorted(selected, key=tag_order):
            wanted.setdefault(tag_group(tag), []).append(tag)
        box = self.query_one("#tb-plots", VerticalScroll)
        plots = {p.group: p for p in box.query(GroupPlot)}
        for group, plot in plots.items():
            if group not in wanted:
                plot.remove()
        new = []
        for group, tags in wanted.items():
            plot = plots.get(group)
            if plot is None:
                plot = GroupPlot(group, self.series)
                plot.log_scale, plot.smoothing = self._log_scale, self._smoothing
                new.append(plot)
            plot.tags = tags
            plot.refresh()
        if new:
            box.mount_all(new)
            box.sort_children(key=lambda w: tag_order(w.tags[0]) if isinstance(w, GroupPlot)
                              else (-1, "", ""))
        self.query_one("#tb-empty").display = not wanted

    def _redraw_dirty(self) -> None:
        if not self._dirty:
            return
        for plot in self.query(GroupPlot):
            if plot.group in self._dirty:
                plot.refresh()
        self._dirty.clear()

    def _show_status(self) -> None:
        text = Text()
        text.append(self.shown_dir + "\n", style="bold")
        style = {"running": "green", "idle": "yellow"}.get(self.status, "dim")
        text.append(self.status, style=style)
        text.append(f" · {len(self.series)} tags · step {self.last_step}")
        if self.too_many_tags:
            text.append(f"\nmore than {MAX_TAGS} tags: the rest are not shown", style="yellow")
        if self.problem:
            text.append("\n" + self.problem[:300], style="yellow")
        self.query_one("#tb-status", Static).update(text)

    # ---- actions ---------------------------------------------------------------------------
    def action_focus_tags(self) -> None:
        self.query_one("#tb-tags", SelectionList).focus()

    def action_toggle_all(self) -> None:
        picker = self.query_one("#tb-tags", SelectionList)
        if picker.selected:
            picker.deselect_all()
        else:
            picker.select_all()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:  # opened from the runs screen
            self.app.pop_screen()

    def action_smoothing(self, direction: int) -> None:
        self._smoothing = step_along(SMOOTHING_STEPS, self._smoothing, direction)
        for plot in self.query(GroupPlot):
            plot.smoothing = self._smoothing
            plot.refresh()

    def action_toggle_log_scale(self) -> None:
        self._log_scale = not self._log_scale
        for plot in self.query(GroupPlot):
            plot.log_scale = self._log_scale
            plot.refresh()


class TensorBoardWatchApp(ViewerApp):
    """`tui-nn watch LOG_DIR` for a TensorBoard log directory: the screen alone."""

    def __init__(self, log_dir: str | Path, **kwargs: Any) -> None:
        super().__init__(TensorBoardWatchScreen(log_dir, **kwargs))

    def get_system_commands(self, screen: Screen):
        yield from super().get_system_commands(screen)
        if isinstance(screen, TensorBoardWatchScreen):
            yield SystemCommand("Tags: pick", "Focus the tag picker (t)", screen.action_focus_tags)
            yield SystemCommand("Tags: all or none", "Show every tag, or none (a)",
                                screen.action_toggle_all)
            yield SystemCommand("Curves: toggle log axis", "Values on a log10 axis (g)",
                                screen.action_toggle_log_scale)
            yield SystemCommand("Curves: more smoothing", "Raise the EMA weight (])",
                                lambda: screen.action_smoothing(1))
            yield SystemCommand("Curves: less smoothing", "Lower the EMA weight ([)",
                                lambda: screen.action_smoothing(-1))


def watch_screen_for(path: str | Path) -> Screen:
    """The watch view for what `path` holds: a TensorBoard log directory gets this module's
    screen, a tui-nn run directory the run's WatchScreen."""
    if tb.is_tensorboard_dir(path):
        return TensorBoardWatchScreen(path)
    from tui_nn.tui.screens.watch import WatchScreen
    return WatchScreen(path)
