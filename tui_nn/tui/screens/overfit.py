"""The overfitting lesson: the same small CNN on 256 digits, plainly and with each remedy
(--augment digits, dropout 0.5, weight decay), train and validation loss side by side per
epoch. The plain run's curves part (it memorises the 256 images); the remedies keep them
together. It trains on opening (about 30-40 s on 2 CPU cores); r trains again.

Training runs on a thread worker that posts one message per epoch; the screen only draws.
Leaving the view stops it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.widgets import Footer, Header, Static

from tui_nn.tui.screens.lesson_base import LessonScreen
from tui_nn.tui.widgets.plot_visual import FigurePlot

VARIANTS = ("plain", "augment", "dropout", "weight decay")
REMEDY = {"plain": "no remedy", "augment": "--augment digits", "dropout": "Dropout(0.5)",
          "weight decay": "--weight-decay 0.02"}


@dataclass
class CurveEpoch(Message):
    variant: str
    train: list[float]
    val: list[float]
    accuracy: list[float]


@dataclass
class CurvesDone(Message):
    error: str | None
    seconds: float


class OverfitScreen(LessonScreen):
    """Train/validation loss per epoch for the same net with and without remedies."""

    DEFAULT_CSS = """
    OverfitScreen #of-grid { grid-size: 2 2; height: 1fr; }
    OverfitScreen .of-cell { height: 1fr; }
    OverfitScreen .of-title { height: 1; }
    OverfitScreen FigurePlot { height: 1fr; }
    OverfitScreen #of-status { height: auto; color: $text-muted; }
    """

    BINDINGS = [Binding("r", "train", "Train again")]

    def __init__(self, *, options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.options = {"epochs": 30, **(options or {})}
        self.curves: dict[str, tuple[list[float], list[float], list[float]]] = {}
        self.running = False
        self.done = False
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with Grid(id="of-grid"):
            for i, name in enumerate(VARIANTS):
                with Vertical(classes="of-cell"):
                    yield Static(Text(f"{name} ({REMEDY[name]})"), id=f"of-title-{i}",
                                 classes="of-title")
                    yield FigurePlot(self._drawer(name), id=f"of-plot-{i}")
        yield Static("", id="of-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "overfitting"
        self.action_train()

    def on_unmount(self) -> None:
        self._stop.set()

    def action_train(self) -> None:
        if self.running:
            return
        self.running, self.done = True, False
        self.curves = {}
        self._stop = threading.Event()
        self._status(f"training the same CNN 4 times on 256 digits "
                     f"({self.options['epochs']} epochs each)…")
        for i in range(len(VARIANTS)):
            self.query_one(f"#of-plot-{i}", FigurePlot).refresh()
        self._train(dict(self.options), self._stop)

    @work(thread=True, name="overfit", group="overfit", exit_on_error=False)
    def _train(self, options: dict[str, Any], stop: threading.Event) -> None:
        from tui_nn.lessons.overfit import overfit_curves

        t0 = time.monotonic()
        try:
            overfit_curves(VARIANTS, stop=stop, **options, on_epoch=lambda c: self.post_message(
                CurveEpoch(c.variant, list(c.train_loss), list(c.val_loss),
                           list(c.val_accuracy))))
            error = None
        except Exception as e:  # noqa: BLE001 - shown in the view, the app keeps running
            error = f"{type(e).__name__}: {e}"
        self.post_message(CurvesDone(error, time.monotonic() - t0))

    @on(CurveEpoch)
    def _on_epoch(self, message: CurveEpoch) -> None:
        self.curves[message.variant] = (message.train, message.val, message.accuracy)
        i = VARIANTS.index(message.variant)
        self.query_one(f"#of-title-{i}", Static).update(self._title(message.variant))
        self.query_one(f"#of-plot-{i}", FigurePlot).refresh()

    @on(CurvesDone)
    def _on_done(self, message: CurvesDone) -> None:
        self.running, self.done = False, message.error is None
        if message.error:
            self._status(f"failed: {message.error}")
            return
        self._status(f"trained in {message.seconds:.0f} s. gap = validation − training loss at "
                     "the last epoch. Remedies: " + ", ".join(
                         f"{n} = {REMEDY[n]}" for n in VARIANTS[1:]) + ". r trains again")

    def _status(self, text: str) -> None:
        self.query_one("#of-status", Static).update(Text(text))

    def _title(self, name: str) -> Text:
        train, val, acc = self.curves[name]
        gap = val[-1] - train[-1]
        text = Text(f"{name}  ")
        text.append(f"gap {gap:+.2f}", style="bold red" if gap > 0.2 else "bold green")
        text.append(f"  val acc {acc[-1] * 100:.0f}%  epoch {len(val)}")
        return text

    def _drawer(self, name: str):
        def draw(plt, width: int, height: int) -> None:
            train, val, _ = self.curves.get(name, ([], [], []))
            plt.xlabel("epoch")
            if not val:
                plt.title("…")
                return
            epochs = list(range(1, len(val) + 1))
            plt.plot(epochs, train, label="train", color="blue")
            plt.plot(epochs, val, label="validation", color="red")
            plt.xlim(1, max(2, self.options["epochs"]))
            plt.ylim(0, max(2.4, max(val + train)))
        return draw
