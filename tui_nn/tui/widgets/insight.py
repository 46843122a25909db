"""The Insight tab: views that follow a training run as it goes.

- Gradients: per-layer gradient norm as log-scale bars and the update/weight ratio, from the
  engine's GradientFlow events (read after backward, before the step, at report time).
- Vanishing: the built-in lesson, a deep sigmoid MLP against the same net with ReLU, side by
  side on one scale (computed in a thread worker the first time the view is shown, ~0.1 s).
- Fit: a 1-D model's data as a scatter and its current prediction line (plotext).
- Classifier: the confusion matrix after each epoch and validation images drawn with half
  blocks, misclassified first, with predicted/true labels.

Data arrives in the bridge's LiveInsightState; the screen calls ``InsightPane.tick`` on its
frame timer (at most about once a second while training) and a view redraws only when its data
changed. Text views build a Rich Text (well under a millisecond per layer); the fit plot is a
plotext figure of at most a few hundred points. Hidden views are not rendered at all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Sequence

from rich.color import Color
from rich.style import Style
from rich.text import Span, Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static, TabbedContent, TabPane

from tui_nn.tui.widgets.plot_visual import FigurePlot

# Same thresholds as the engine's monitor (tui_nn.insight.gradflow), repeated here so that
# drawing does not import torch; tests/test_tui_insight.py checks they agree.
VANISH_ABS = 1e-7
VANISH_REL = 1e-3
EXPLODE_ABS = 1e3
EIGHTHS = " ▏▎▍▌▋▊▉█"

OK_STYLE = "green"
VANISH_STYLE = "yellow"
BAD_STYLE = "bold red"


# ---- pure rendering (benchmarked in benchmarks/bench_insight.py) --------------------------------
def layer_state(grad_norm: float, largest: float) -> str:
    """'ok', 'vanishing', 'dead' or 'exploding' by the monitor's thresholds (one observation)."""
    if not math.isfinite(grad_norm) or grad_norm > EXPLODE_ABS:
        return "exploding"
    if grad_norm == 0.0:
        return "dead"
    if grad_norm < VANISH_ABS or (largest > 0 and grad_norm < VANISH_REL * largest):
        return "vanishing"
    return "ok"


def log_range(norms: Sequence[float]) -> tuple[float, float]:
    """Decades spanned by the bars: from just below the smallest non-zero norm to just above
    the largest, at least 3 decades wide, within 1e-12..1e6."""
    logs = [math.log10(g) for g in norms if math.isfinite(g) and g > 0]
    if not logs:
        return -6.0, 0.0
    lo, hi = math.floor(min(logs)), math.ceil(max(logs))
    if hi <= max(logs):
        hi += 1
    if hi - lo < 3:
        lo = hi - 3
    return float(max(lo, -12)), float(min(hi, 6))


def bar(value: float, lo: float, hi: float, width: int) -> str:
    """A horizontal bar for log10(value) on [lo, hi], with eighth-cell resolution."""
    if width <= 0:
        return ""
    if not math.isfinite(value):
        return "█" * width
    if value <= 0:
        return ""
    frac = (math.log10(value) - lo) / (hi - lo) if hi > lo else 1.0
    eighths = round(min(max(frac, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[part] if part else "")


def axis_line(lo: float, hi: float, width: int, indent: int) -> Text:
    """Decade labels under the bars ('1e-6', '1e-3', '1e0'), as many as fit."""
    line = [" "] * (indent + width + 6)
    decades = int(hi - lo)
    step = 1
    while decades // step and width / (decades / step) < 6:  # keep labels ≥ 6 cells apart
        step += 1
    for d in range(int(lo), int(hi) + 1, step):
        label = f"1e{d}"
        pos = indent + round((d - lo) / (hi - lo) * width) if hi > lo else indent
        pos = min(pos, len(line) - len(label))
        if all(c == " " for c in line[max(pos - 1, 0):pos + len(label)]):
            line[pos:pos + len(label)] = list(label)
    return Text("".join(line).rstrip(), style="dim")


def gradflow_text(snapshot: Any, width: int, *, log_lo: float | None = None,
                  log_hi: float | None = None, compact: bool = False) -> Text:
    """One row per layer, forward order (input side first): name, bar of log10 ‖grad‖, the
    norm, and (unless compact) the layer type and lr·‖g‖/‖w‖."""
    layers = snapshot.layers
    norms = [s.grad_norm for s in layers]
    lo, hi = log_range(norms)
    lo = lo if log_lo is None else log_lo
    hi = hi if log_hi is None else log_hi
    finite = [g for g in norms if math.isfinite(g)]
    largest = max(finite, default=0.0)
    name_w = min(max([len(s.name) for s in layers] + [3 if compact else 5]),
                 14 if not compact else 8)
    kind_w = 0 if compact else min(max((len(s.kind) for s in layers), default=4), 8) + 1
    nums_w = 9 if compact else 9 + 10
    bar_w = max(width - name_w - 1 - kind_w - nums_w - 2, 4)
    out = Text(no_wrap=True, overflow="ellipsis")
    if not compact:
        out.append(f"{'layer':<{name_w}} {'':<{kind_w}}", style="bold")
        out.append(f"{'‖grad‖, log scale':<{bar_w}}  {'‖grad‖':>8} {'upd/w':>9}\n", style="bold")
    for s in layers:
        state = layer_state(s.grad_norm, largest) if s.has_grad else "dead"
        style = {"ok": OK_STYLE, "vanishing": VANISH_STYLE}.get(state, BAD_STYLE)
        name = s.name if len(s.name) <= name_w else s.name[:name_w - 1] + "…"
        out.append(f"{name:<{name_w}} ")
        if kind_w:
            out.append(f"{s.kind[:kind_w - 1]:<{kind_w}}", style="dim")
        out.append(f"{bar(s.grad_norm, lo, hi, bar_w):<{bar_w}}", style=style)
        value = f"{s.grad_norm:.1e}" if s.has_grad else "no grad"
        out.append(f"  {value:>8}" if not compact else f" {value:>8}",
                   style=style if state != "ok" else "")
        if not compact:
            ratio = s.update_ratio
            out.append(f" {ratio:>9.1e}" if math.isfinite(ratio) else f" {'–':>9}", style="dim")
        out.append("\n")
    out.append_text(axis_line(lo, hi, bar_w, name_w + 1 + kind_w))
    return out


def confusion_text(cm: Any, max_classes: int = 20) -> Text:
    """Rows are true classes, columns predicted; the diagonal is green, mistakes red, both
    brighter with the share of the row they hold."""
    counts = cm.counts[:max_classes]
    n = len(counts)
    labels = [str(label)[:4] for label in cm.labels[:n]]
    lab_w = max((len(label) for label in labels), default=1) + 1
    cell = max(4, max((len(str(c)) for row in counts for c in row[:n]), default=1) + 1, lab_w)
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(" " * (lab_w + 2))
    out.append("".join(f"{label:>{cell}}" for label in labels) + "\n", style="bold")
    for t, row in enumerate(counts):
        out.append(f"{labels[t]:>{lab_w}}  ", style="bold")
        total = sum(cm.counts[t]) or 1
        for p in range(n):
            c = row[p]
            if c == 0:
                out.append(f"{'·':>{cell}}", style="dim")
                continue
            share = c / total
            level = int(60 + 150 * share)
            bg = Color.from_rgb(0, level, 0) if p == t else Color.from_rgb(level, 0, 0)
            out.append(f"{c:>{cell}}", style=Style(bgcolor=bg, color="white", bold=p == t))
        out.append("\n")
    if len(cm.counts) > n:
        out.append(f"(first {n} of {len(cm.counts)} classes)\n", style="dim")
    out.append(f"accuracy {cm.accuracy * 100:.1f}% ({cm.correct}/{cm.total})", style="bold")
    confused = cm.most_confused(3)
    if confused:
        out.append("   most confused: " + ", ".join(f"{t}→{p} ×{c}" for t, p, c in confused))
    return out


# Gray levels of the image cells: a 256-colour terminal has 24 grays (+ black and white), so
# 32 levels lose nothing there, and at most 33² styles are ever made (cached for all grids).
GRAY_LEVELS = 32
_CELL_STYLES: dict[int, dict[tuple[int, int], Style]] = {}  # levels -> (top, bottom) -> style


def _gray(level: float) -> Color:
    v = int(max(0.0, min(1.0, level)) * 255)
    return Color.from_rgb(v, v, v)


def image_rows(images: Sequence[Sequence[Sequence[float]]], img_w: int, gap: int = 2,
               levels: int = GRAY_LEVELS, pos: int = 0) -> tuple[str, list[Span]]:
    """Gray images (rows of values in [0, 1]) side by side, two pixel rows per line: each cell
    a '▀' coloured top pixel / bottom pixel, each image padded to img_w cells. The lines and a
    span per cell, the spans counted from ``pos`` (where the lines go in a longer Text).

    Built as one string plus spans for one Text (Text.append per cell costs 3× as much, and
    Text.append_text of the lines copies every span again)."""
    styles = _CELL_STYLES.setdefault(levels, {})
    parts: list[str] = []
    spans: list[Span] = []
    for y in range(0, max((len(image) for image in images), default=0), 2):
        for j, image in enumerate(images):
            if j:
                parts.append(" " * gap)
                pos += gap
            top = image[y] if y < len(image) else []
            bottom = image[y + 1] if y + 1 < len(image) else [0.0] * len(top)
            for t, b in zip(top, bottom):
                key = (int(t * levels), int(b * levels))
                style = styles.get(key)
                if style is None:  # making a Style is the slow part: each pair once
                    style = styles[key] = Style(color=_gray(key[0] / levels),
                                                bgcolor=_gray(key[1] / levels))
                spans.append(Span(pos, pos + 1, style))
                pos += 1
            parts.append("▀" * len(top) + " " * (img_w - len(top)))
            pos += img_w - len(top)
        parts.append("\n")
        pos += 1
    return "".join(parts), spans


def grid_text(samples: Sequence[Any], width: int, gap: int = 2, captions: bool = True) -> Text:
    """Images side by side (image_rows), each with a caption: ✗ pred (true t) in red for
    mistakes, ✓ in green, and the model's confidence (none for generated images:
    captions=False)."""
    if not samples:
        return Text("")
    img_w = max(len(samples[0].image[0]), 10)
    columns = max(1, (width + gap) // (img_w + gap))
    parts: list[str] = []
    spans: list[Span] = []
    pos = 0
    for start in range(0, len(samples), columns):
        row = samples[start:start + columns]
        lines, line_spans = image_rows([s.image for s in row], img_w, gap, pos=pos)
        parts.append(lines)
        spans += line_spans
        pos += len(lines)
        for j, s in enumerate(row if captions else ()):
            if j:
                parts.append(" " * gap)
                pos += gap
            mark = "✓" if s.correct else "✗"
            caption = (f"{mark}{s.pred_label} ({s.true_label}) {s.confidence * 100:.0f}%"
                       if not s.correct else f"{mark}{s.pred_label} {s.confidence * 100:.0f}%")
            spans.append(Span(pos, pos + img_w, "red" if not s.correct else "green"))
            parts.append(f"{caption[:img_w]:<{img_w}}")
            pos += img_w
        parts.append("\n")  # after the captions; a blank line between rows of generated images
        pos += 1
    return Text("".join(parts), spans=spans, no_wrap=True, overflow="crop")


# ---- widgets -----------------------------------------------------------------------------------
NO_GRADIENTS = ("No gradients yet: start a run (s); they are read after backward, before each "
                "report's optimizer step.")
NO_GRADIENTS_OWN_STEP = ("No gradient flow for this model: it trains with a step of its own "
                         "(the GAN's D and G steps), which does not report per-layer gradients.")
NO_PREDICTIONS = ("No predictions yet: they come with each epoch's validation pass "
                  "(classifiers).")
NO_IMAGES_OWN_STEP = "No generated images yet: they come after each epoch."

class _TextView(Static):
    """A Static redrawn from a data object."""

    def __init__(self, empty: str, **kwargs) -> None:
        self.empty = Text(empty, style="dim")
        self.text = self.empty  # what is shown (tests read .text.plain)
        super().__init__(self.text, **kwargs)

    def draw(self, build) -> None:
        # A view in a hidden tab has no size yet: draw for the app's width (a resize redraws).
        width = self.size.width or (self.parent.size.width if self.parent else 0)
        text = build(max(width or self.app.size.width - 2, 40))
        self.text = text
        self.update(text)

    def clear(self, empty: str | None = None) -> None:
        """Show the placeholder (a new one: what this run will or will not show here)."""
        if empty is not None:
            self.empty = Text(empty, style="dim")
        self.text = self.empty
        self.update(self.empty)


class GradientFlowView(Vertical):
    """Live per-layer gradient norms (log-scale bars) and update/weight ratios."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.event: Any = None  # the ev.GradientFlow shown

    def compose(self) -> ComposeResult:
        yield Static("", id="flow-head", classes="insight-head")
        with VerticalScroll(id="flow-scroll"):
            yield _TextView(NO_GRADIENTS, id="flow-bars")
        yield Static("", id="flow-warnings", classes="insight-foot")

    def on_resize(self) -> None:
        if self.event is not None:
            self.show(self.event, self._warnings)

    def clear(self, own_step: bool = False) -> None:
        self.event = None
        for selector in ("#flow-head", "#flow-warnings"):
            self.query_one(selector, Static).update("")
        self.query_one("#flow-bars", _TextView).clear(
            NO_GRADIENTS_OWN_STEP if own_step else NO_GRADIENTS)

    def show(self, event: Any, warnings: Sequence[str] = ()) -> None:
        self.event = event
        self._warnings = list(warnings)
        snap = event.snapshot
        lr = f" · lr {snap.lr:g}" if snap.lr is not None else ""
        self.query_one("#flow-head", Static).update(
            f"[b]Gradient flow[/] · step {event.step} (epoch {event.epoch + 1}){lr} · "
            f"global ‖g‖ {snap.total_norm:.2e}")
        self.query_one("#flow-bars", _TextView).draw(lambda w: gradflow_text(snap, w - 1))
        foot = self.query_one("#flow-warnings", Static)
        if warnings:
            foot.update(Text(f"⚠ {warnings[-1]}" + (f"  (+{len(warnings) - 1} more in the log)"
                                                     if len(warnings) > 1 else ""),
                             style="yellow", no_wrap=True, overflow="ellipsis"))
        else:
            foot.update(Text("green: healthy · yellow: < 1e-3 × the largest (vanishing) · "
                             "red: dead or exploding · upd/w = lr·‖g‖/‖w‖", style="dim",
                             no_wrap=True, overflow="ellipsis"))


class VanishingView(Vertical):
    """The same 8-layer MLP with sigmoid and with ReLU, a few SGD steps each, side by side."""

    @dataclass
    class Computed(Message):
        comparison: Any
        error: str | None = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.comparison: Any = None
        self.pending = False

    def compose(self) -> ComposeResult:
        yield Static("[b]Vanishing gradients[/]: the same 8-layer MLP, sigmoid vs ReLU",
                     id="vanish-head", classes="insight-head")
        with Horizontal(id="vanish-cols"):
            yield _TextView("computing…", id="vanish-sigmoid", classes="vanish-col")
            yield _TextView("", id="vanish-relu", classes="vanish-col")
        yield Static("", id="vanish-foot", classes="insight-foot")

    def compute(self) -> None:
        """Train both nets (10 SGD steps each, one thread) in a worker; once."""
        if self.comparison is not None or self.pending:
            return
        self.pending = True

        def work() -> None:
            from tui_nn.tui.bridge import in_fresh_thread

            try:
                from tui_nn.insight.gradflow import compare_vanishing

                result = in_fresh_thread(compare_vanishing, "tui-nn-vanishing")
                self.post_message(self.Computed(result))
            except Exception as exc:  # noqa: BLE001 - shown in the view
                self.post_message(self.Computed(None, f"{type(exc).__name__}: {exc}"))

        self.run_worker(work, thread=True, name="vanishing", group="vanishing",
                        exit_on_error=False)

    @on(Computed)
    def _computed(self, message: Computed) -> None:
        self.pending = False
        if message.error is not None:
            self.query_one("#vanish-sigmoid", Static).update(Text(message.error, style="red"))
            return
        self.comparison = message.comparison
        self.draw()

    def on_resize(self) -> None:
        if self.comparison is not None:
            self.draw()

    def draw(self) -> None:
        comp = self.comparison
        norms = [g for a in comp.activations for g in comp.grad_norms[a]]
        lo, hi = log_range(norms)
        for act in comp.activations[:2]:
            layers = [SimpleNamespace(name=n, kind="Linear", grad_norm=g, has_grad=True,
                                      update_ratio=r)
                      for n, g, r in zip(comp.layers, comp.grad_norms[act],
                                         comp.update_ratios[act])]
            snap = SimpleNamespace(layers=layers)
            view = self.query_one(f"#vanish-{act}", _TextView)

            def build(w: int, snap=snap, act=act) -> Text:
                head = Text(f"{act}: fc1/fc{comp.depth} = {comp.first_over_last(act):.1e}\n",
                            style="bold")
                head.append_text(gradflow_text(snap, w - 1, log_lo=lo, log_hi=hi,
                                               compact=True))
                return head

            view.draw(build)
        words = ", ".join(f"{a} {comp.losses[a][0]:.3f}→{comp.losses[a][-1]:.3f}"
                          for a in comp.activations)
        sig = comp.first_over_last("sigmoid") if "sigmoid" in comp.activations else math.nan
        self.query_one("#vanish-foot", Static).update(Text(
            f"mean ‖grad‖ over {comp.steps} SGD steps (lr {comp.lr:g}), one log scale. "
            f"Sigmoid's derivative is ≤ 0.25, so each layer shrinks the gradient: fc1 gets "
            f"{sig:.0e} of fc{comp.depth}'s. Loss {words}.", style="dim"))


class FitPlot(FigurePlot):
    """The data (points) and the model's current prediction (line)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(self._draw_fit, **kwargs)
        self.event: Any = None  # the ev.FitUpdate shown

    def _draw_fit(self, plt, width: int, height: int) -> None:
        event = self.event
        if event is None:
            plt.title("fit: train a 1-D model (curve, linear, logistic) to see its line")
        else:
            snap = event.snapshot
            binary = snap.task == "binary"
            loss = (f" · {'BCE' if binary else 'MSE'} {snap.loss:.4g}"
                    if snap.loss is not None else "")
            where = (f" · P=0.5 at x={snap.boundary:.2f}" if binary and snap.boundary is not None
                     else "")
            plt.title(f"step {event.step}{loss}{where}")
            plt.scatter(snap.x, snap.y, marker="●", color="orange+", label="data")
            plt.plot(snap.line_x, snap.line_y, marker="braille", color="cyan+",
                     label="P(class 1)" if binary else "model")
            if binary and snap.boundary is not None:
                plt.vline(snap.boundary, "gray")
        plt.frame(True)


class ClassifierView(VerticalScroll):
    """Confusion matrix after each epoch, then validation images (misclassified first)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.event: Any = None  # the ev.ValPredictions shown

    def compose(self) -> ComposeResult:
        yield Static("", id="classes-head", classes="insight-head")
        yield _TextView(NO_PREDICTIONS, id="confusion")
        yield _TextView("", id="samples")

    def on_resize(self) -> None:
        if self.event is not None:
            self.show(self.event)

    def clear(self, own_step: bool = False) -> None:
        self.event = None
        self.query_one("#classes-head", Static).update("")
        confusion = self.query_one("#confusion", _TextView)
        confusion.display = True
        confusion.clear(NO_IMAGES_OWN_STEP if own_step else NO_PREDICTIONS)
        self.query_one("#samples", _TextView).clear()

    def show(self, event: Any) -> None:
        self.event = event
        if getattr(event, "images", None) is not None:  # ev.GeneratedSamples (the GAN)
            self._show_generated(event)
            return
        cm = event.confusion
        self.query_one("#confusion", _TextView).display = True
        self.query_one("#classes-head", Static).update(
            f"[b]Confusion matrix[/] after epoch {event.epoch + 1} · {cm.total} validation "
            f"samples (rows: true, columns: predicted)")
        self.query_one("#confusion", _TextView).draw(lambda w: confusion_text(cm))
        samples = event.samples
        if samples:
            wrong = sum(not s.correct for s in samples)
            self.query_one("#samples", _TextView).draw(lambda w: Text.assemble(
                (f"\n{len(samples)} validation images, {wrong} misclassified first: "
                 "prediction (true) confidence\n", "bold"), grid_text(samples, w - 1)))

    def _show_generated(self, event: Any) -> None:
        """A generator's pictures of the same fixed noise after each epoch: blobs at first,
        digits as G learns to fool D."""
        images = [SimpleNamespace(image=image) for image in event.images]  # no captions
        self.query_one("#classes-head", Static).update(
            f"[b]Generated images[/] after epoch {event.epoch + 1} · the same "
            f"{len(images)} noise vectors every epoch")
        self.query_one("#confusion", _TextView).display = False  # no matrix: no placeholder
        self.query_one("#samples", _TextView).draw(
            lambda w: grid_text(images, w - 1, captions=False))


class InsightPane(Vertical):
    """The Insight tab: a switcher of the live views.

    Views are only redrawn while they are on screen: with the Train tab showing, the
    Insight tab costs the UI thread nothing but a version check per frame; a view catches up
    when it is shown (the tab's Show event, the inner tabs' TabActivated)."""

    def __init__(self, state: Any = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state = state  # the bridge's LiveInsightState

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="flow", id="insight-tabs"):
            with TabPane("Gradients", id="flow"):
                yield GradientFlowView(id="flow-view")
            with TabPane("Vanishing", id="vanish"):
                yield VanishingView(id="vanish-view")
            with TabPane("Fit", id="fit"):
                yield FitPlot(id="fit-plot")
            with TabPane("Classifier", id="classes"):
                yield ClassifierView(id="classes-view")

    def on_mount(self) -> None:
        self._drawn = (0, 0, 0)

    def show(self, view: str) -> None:
        self.query_one("#insight-tabs", TabbedContent).active = view
        if view == "vanish":
            self.query_one(VanishingView).compute()

    @on(TabbedContent.TabActivated, "#insight-tabs")
    def _activated(self, event: TabbedContent.TabActivated) -> None:
        event.stop()  # the main screen's tabs are not concerned
        if event.pane is not None and event.pane.id == "vanish":
            self.query_one(VanishingView).compute()
        self.call_after_refresh(self.tick)  # the view just shown catches up

    def on_show(self) -> None:
        self.call_after_refresh(self.tick)

    def reset(self, own_step: bool = False) -> None:
        """A new run: forget the last run's pictures. own_step: the model trains with a step of
        its own (the GAN's), which reports no gradient flow and draws pictures, not a matrix."""
        self._drawn = (0, 0, 0)
        self.query_one(GradientFlowView).clear(own_step)
        self.query_one(ClassifierView).clear(own_step)
        plot = self.query_one(FitPlot)
        plot.event = None
        plot.refresh()

    def tick(self, state: Any = None) -> None:
        """Redraw the visible view if its data changed (the screen's frame timer calls this)."""
        state = state or self.state
        if state is None:
            return
        self.state = state
        versions = (state.gradient_version, state.fit_version, state.predictions_version)
        drawn = list(self._drawn)
        if versions[0] != drawn[0] and state.gradients is not None:
            view = self.query_one(GradientFlowView)
            if view.region.area:
                view.show(state.gradients, state.warnings)
                drawn[0] = versions[0]
        if versions[1] != drawn[1] and state.fit is not None:
            plot = self.query_one(FitPlot)  # cheap: a hidden plot is not rendered
            plot.event = state.fit
            plot.refresh()
            drawn[1] = versions[1]
        if versions[2] != drawn[2] and state.predictions is not None:
            view = self.query_one(ClassifierView)
            if view.region.area:
                view.show(state.predictions)
                drawn[2] = versions[2]
        self._drawn = tuple(drawn)
