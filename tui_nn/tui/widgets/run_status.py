"""Run status: device, epoch and step progress, throughput, ETA, lr, best metric, memory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

from tui_nn.fmt import fmt_bytes, fmt_duration, fmt_metric
from tui_nn.tui.widgets.wrapping import wrapped_height

if TYPE_CHECKING:  # importing the engine imports torch (seconds): not before the first frame
    from tui_nn.engine import events as ev

STATE_LABELS = {
    "idle": "ready",
    "loading": "loading PyTorch…",
    "starting": "starting…",
    "running": "training",
    "paused": "paused",
    "stopping": "stopping…",
    "finished": "finished",
    "stopped": "stopped",
    "failed": "failed",
}


LIVE_STATES = ("starting", "running", "paused", "stopping")


class SteadyProgressBar(ProgressBar):
    """A ProgressBar that redraws only when its progress changes. Textual's calls update() bare
    once a second to recompute an ETA, and redraws; with show_eta=False nothing shown changes,
    but each is a wake-up of the UI thread and a screen update while a run trains."""

    def update(self, **changes) -> None:
        if changes:
            super().update(**changes)


class RunStatus(Vertical):
    """Shows the state of the current run; the screen sets its attributes from engine events."""

    _ready = False  # set in on_mount: widgets exist from then on

    state: reactive[str] = reactive("idle")
    """The run state: idle, starting, running, paused, stopping, finished, stopped or failed."""

    started: reactive["ev.RunStarted | None"] = reactive(None)
    """The run's RunStarted event (device, sizes), None before a run."""

    latest: reactive["ev.StepMetrics | None"] = reactive(None)
    """The newest step metrics."""

    epoch: reactive["ev.EpochMetrics | None"] = reactive(None)
    """The last finished epoch's metrics."""

    device: reactive[str] = reactive("")
    """The device the next run will use, shown before a run starts."""

    best_epoch: reactive[int] = reactive(0)
    """1-based epoch of the best validation metric so far (0: none yet)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="status-head")
        with Horizontal(classes="status-bar-row"):
            yield Static("epoch", id="epoch-label", classes="status-bar-label")
            yield SteadyProgressBar(total=1, show_eta=False, id="epoch-bar")
        with Horizontal(classes="status-bar-row"):
            yield Static("step", id="step-label", classes="status-bar-label")
            yield SteadyProgressBar(total=1, show_eta=False, id="step-bar")
        yield Static("", id="status-numbers")

    def on_mount(self) -> None:
        self._ready = True
        self._shown: dict[str, str] = {}
        self._heights: dict[str, int] = {}  # wrapped lines of each text shown
        self._render_all()

    def watch_state(self, old: str, new: str) -> None:
        self.remove_class(f"-{old}")
        self.add_class(f"-{new}")
        self._render_all()

    def on_resize(self) -> None:
        if self._ready:
            self._shown.clear()  # a new width may wrap the lines differently
            self._render_all()

    def _set(self, selector: str, text: Text | str) -> None:
        """Update a text only when it changed, and lay the screen out only when its wrapped
        height changed (a layout of the whole screen several times a second would cost more
        than the training loop). Lines wrap, never end in "…": no number is cut."""
        key = text.plain if isinstance(text, Text) else text
        if self._shown.get(selector) == key:
            return
        self._shown[selector] = key
        widget = self.query_one(selector, Static)
        height = wrapped_height(text, widget.content_size.width, self.app.console)
        widget.update(text, layout=self._heights.get(selector) != height)
        self._heights[selector] = height

    def _render_all(self) -> None:
        if not self._ready:
            return
        s, m, e = self.started, self.latest, self.epoch
        state = STATE_LABELS.get(self.state, self.state)
        # Events come inert (schema.decode in watch, the bridge's inert_event in the app), as
        # does the catalog's device line (tui.catalog.device_line).
        device = s.device_name if s else self.device or "-"
        head = Text.assemble((state, "bold"), f" on {device[:80]}")
        if s is not None:  # a count of 0 is one a loop did not give (tui_nn.Run): left out
            parts = [s.model[:80], s.dataset[:80]] + \
                [f"{n:,} {unit}" for n, unit in ((s.n_train, "samples"),
                                                  (s.parameters, "params")) if n]
            head.append("\n" + " · ".join(p for p in parts if p not in ("", "-")))
        self._set("#status-head", head)

        epoch_bar = self.query_one("#epoch-bar", ProgressBar)
        step_bar = self.query_one("#step-bar", ProgressBar)
        if s is None:
            epoch_bar.update(total=1, progress=0)  # not indeterminate: that one animates
            step_bar.update(total=1, progress=0)
            self._set("#epoch-label", "epoch -")
            self._set("#step-label", "step -")
        else:
            epochs_done = e.epoch + 1 if e is not None else s.start_epoch
            if m is not None:
                in_epoch = m.epoch_step
                current_epoch = m.epoch + 1
            else:
                in_epoch, current_epoch = 0, min(epochs_done + 1, s.epochs or epochs_done + 1)
            if e is not None and m is not None and e.epoch >= m.epoch:
                in_epoch = s.steps_per_epoch
            # Totals a loop did not give are 0: the count alone, an empty bar.
            epoch_bar.update(total=s.epochs or 1, progress=epochs_done if s.epochs else 0)
            step_bar.update(total=s.steps_per_epoch or 1,
                            progress=in_epoch if s.steps_per_epoch else 0)
            self._set("#epoch-label", _count("epoch", current_epoch, s.epochs))
            self._set("#step-label", _count("step", in_epoch, s.steps_per_epoch))

        lines = []
        if m is not None:
            gpu = s is not None and s.device.startswith("cuda")
            # NaN or None: a value the loop did not give (tui_nn.Run), left out, never a 0.
            # An ended run has no speed and no time to go.
            speed = [f"{m.samples_per_s:,.0f} samples/s"] if m.samples_per_s == m.samples_per_s \
                else []
            if m.eta_s is not None or m.total_steps:
                speed.append(f"ETA {fmt_duration(m.eta_s)}")
            lines += [" · ".join(speed)] if speed and self.state in LIVE_STATES else []
            lines.append(f"lr {m.lr:.3g} · loss {m.loss:.3g}" if m.lr == m.lr
                         else f"loss {m.loss:.3g}")
            lines.append(f"{'GPU mem' if gpu else 'memory'} {fmt_bytes(m.memory_bytes)} · "
                         f"step {m.step:,}" if m.memory_bytes is not None else f"step {m.step:,}")
        if e is not None:
            name = "acc" if e.metric == "accuracy" else e.metric
            lines.append(f"val loss {e.val_loss:.3g} · {name} {fmt_metric(e.metric, e.value)}")
            best = f"best {name} {fmt_metric(e.metric, e.best_value)} (epoch {self.best_epoch})" \
                if self.best_epoch else f"best {name} {fmt_metric(e.metric, e.best_value)}"
            if e.decoded is not None:
                best += f" · output '{e.decoded[:80]}'"
            lines.append(best)
        self._set("#status-numbers", Text("\n".join(lines)))

    watch_started = watch_latest = watch_epoch = watch_device = _render_all


def _count(label: str, n: int, total: int) -> str:
    """'epoch 3/10', or 'epoch 3' when the total is unknown (0)."""
    return f"{label} {n}/{total}" if total else f"{label} {n}"
