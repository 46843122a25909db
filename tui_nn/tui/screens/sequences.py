"""Sequence lessons: the char RNN learning 'hello' -> 'ohlol' (its decoded output after every
epoch), and the plain RNN against LSTM and GRU on the long-range task as the sequence grows.

Left: the char RNN trains as soon as the view opens (15 epochs of one sample, under a second);
r trains it again. Right: how much gradient reaches each time step at initialisation
(insight.sequence.timestep_gradients, one backward per cell, drawn at once), and the accuracy
table, which trains 3 cells × several lengths: l starts it (and stops it), with small
defaults (LONG_RANGE) so it finishes in well under a minute on 2 cores.

All training runs on thread workers that post one message per epoch / per finished run; the
screen only draws what they carry. Leaving the view stops them.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from tui_nn.textsafe import first_line
from tui_nn.tui.screens.lesson_base import LessonScreen

if TYPE_CHECKING:
    from tui_nn.lessons.sequence import (DecodedEpoch, LongRangeResult, LongRangeTable,
                                         TimestepGradients)

TARGET = "ohlol"
CELLS = ("rnn", "lstm", "gru")
GRAD_LENGTH = 50  # the zoo's sequence length for rnn-seq / lstm / gru
# The app's accuracy table: smaller than long_range_comparison's defaults (5 lengths, 15
# epochs of 4000 sequences, ~110 s) so it ends in under a minute on 2 busy cores, and still
# shows the lesson. Measured (seed 0, 2 shared cores, 36 s): RNN/LSTM/GRU 100/100/100% at 5
# and 20 steps, 41/100/100% at 40. Fewer epochs or sequences leave LSTM short of 100% at 40
# (8 × 4000: 26/75/100%; 6 × 1000 at lr 0.01: 25/26/31%), which would blur the lesson.
LONG_RANGE: dict[str, Any] = dict(lengths=(5, 20, 40), epochs=10, n_train=3000,
                                  hidden_size=16, lr=0.005)
SPARK = "▁▂▃▄▅▆▇█"


@dataclass
class CharEpoch(Message):
    row: "DecodedEpoch"


@dataclass
class CharDone(Message):
    error: str | None
    seconds: float


@dataclass
class GradsReady(Message):
    grads: "dict[str, TimestepGradients] | None"
    error: str | None


@dataclass
class LongResult(Message):
    result: "LongRangeResult"


@dataclass
class LongDone(Message):
    table: "LongRangeTable | None"
    error: str | None


def sparkline(values: list[float], width: int) -> str:
    """log10 of the values, bucketed to ``width`` characters (max of each bucket)."""
    logs = [math.log10(v) if v > 0 else -30.0 for v in values]
    if not logs:
        return ""
    width = max(1, min(width, len(logs)))
    buckets = [max(logs[i * len(logs) // width:max((i + 1) * len(logs) // width,
                                                     i * len(logs) // width + 1)])
               for i in range(width)]
    lo, hi = min(buckets), max(buckets)
    span = hi - lo or 1.0
    return "".join(SPARK[min(int((v - lo) / span * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)]
                   for v in buckets)


class SequenceScreen(LessonScreen):
    """The char RNN's output per epoch; RNN vs LSTM vs GRU as the sequence grows."""

    DEFAULT_CSS = """
    SequenceScreen #seq-row { height: 1fr; }
    SequenceScreen #seq-char { width: 34; height: 1fr; padding: 0 1 0 0;
                               border-right: vkey $surface-lighten-2; }
    SequenceScreen #seq-long { width: 1fr; height: 1fr; padding: 0 0 0 1; }
    SequenceScreen .seq-title { height: auto; text-style: bold; }
    SequenceScreen #char-table { height: 1fr; }
    SequenceScreen #char-status { height: auto; }
    SequenceScreen #grad-view { height: auto; }
    SequenceScreen #long-table { height: auto; max-height: 8; }
    SequenceScreen #long-progress { height: 1; }
    SequenceScreen #long-status { height: auto; color: $text-muted; }
    """

    BINDINGS = [
        Binding("r", "train_char", "Retrain char RNN"),
        Binding("l", "long_range", "RNN/LSTM/GRU table"),
    ]

    def __init__(self, *, char_epochs: int = 15, long_options: dict[str, Any] | None = None,
                 grad_length: int = GRAD_LENGTH) -> None:
        super().__init__()
        self.char_epochs = char_epochs
        self.long_options = {**LONG_RANGE, **(long_options or {})}
        self.grad_length = grad_length
        self.char_rows: list[DecodedEpoch] = []
        self.char_running = False
        self.grads: dict[str, TimestepGradients] | None = None
        self.long_results: list[LongRangeResult] = []
        self.long_table: LongRangeTable | None = None
        self.long_running = False
        self._char_stop = threading.Event()
        self._long_stop = threading.Event()
        self._grads_started = False
        self._grads_done = False
        self._long_pending = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≋")
        with Horizontal(id="seq-row"):
            with Vertical(id="seq-char"):
                yield Static("char RNN: 'hello' → 'ohlol'", classes="seq-title")
                yield DataTable(id="char-table", cursor_type="row", zebra_stripes=False)
                yield Static("", id="char-status")
            with Vertical(id="seq-long"):
                yield Static("Remember the first of L symbols: RNN vs LSTM vs GRU",
                             classes="seq-title")
                yield Static("[dim]gradient reaching each time step…[/]", id="grad-view")
                yield DataTable(id="long-table", cursor_type="none", zebra_stripes=False)
                yield ProgressBar(id="long-progress", show_eta=False)
                yield Static("", id="long-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "sequence models"
        char = self.query_one("#char-table", DataTable)
        char.add_columns("epoch", "output", "loss", "right")
        long = self.query_one("#long-table", DataTable)
        long.add_column("length", key="length")
        for cell in CELLS:
            long.add_column(cell.upper(), key=cell, width=5)  # room for '100%'
        for length in self.long_options["lengths"]:
            long.add_row(str(length), *("·" for _ in CELLS), key=str(length))
        self.query_one("#long-progress", ProgressBar).update(
            total=len(self.long_options["lengths"]) * len(CELLS), progress=0)
        self._show_long_status()
        self.action_train_char()  # then the gradients, then the table if asked for meanwhile
        char.focus()

    def on_unmount(self) -> None:
        # Leaving the view ends its training (each worker checks the event every epoch).
        self._char_stop.set()
        self._long_stop.set()

    # ---- char RNN ------------------------------------------------------------------------------
    # One computation at a time: each seeds torch's global generator (Trainer, fork_rng), so
    # two threads at once would interleave their random draws and the numbers would change
    # from run to run; one after the other they are reproducible (and share no CPU).
    def action_train_char(self) -> None:
        if self.char_running:
            return
        if self.long_running:
            self.notify("the RNN/LSTM/GRU table is training: l stops it", timeout=3,
                        markup=False)
            return
        self.char_running = True
        self.char_rows = []
        self.query_one("#char-table", DataTable).clear()
        self.query_one("#char-status", Static).update("[dim]training…[/]")
        self._char_stop = threading.Event()
        self._train_char(self.char_epochs, self._char_stop)

    @work(thread=True, name="char-rnn", group="char-rnn", exit_on_error=False)
    def _train_char(self, epochs: int, stop: threading.Event) -> None:
        from tui_nn.lessons.sequence import char_rnn_progress
        from tui_nn.tui.bridge import in_fresh_thread

        t0 = time.monotonic()
        try:
            in_fresh_thread(lambda: char_rnn_progress(
                epochs, seed=0, on_epoch=lambda row: self.post_message(CharEpoch(row)),
                stop=stop), "tui-nn-char-rnn")
        except Exception as exc:  # noqa: BLE001 - shown in the view
            self.post_message(CharDone(first_line(exc, with_type=True), time.monotonic() - t0))
            return
        self.post_message(CharDone(None, time.monotonic() - t0))

    @on(CharEpoch)
    def _char_epoch(self, event: CharEpoch) -> None:
        row = event.row
        self.char_rows.append(row)
        shown = Text()
        for got, want in zip(row.decoded.ljust(len(TARGET)), TARGET):
            shown.append(got, "bold green" if got == want else "red")
        table = self.query_one("#char-table", DataTable)
        table.add_row(str(row.epoch + 1), shown, f"{row.train_loss:.3f}",
                      f"{round(row.accuracy * len(TARGET))}/{len(TARGET)}")
        table.move_cursor(row=table.row_count - 1)

    @on(CharDone)
    def _char_done(self, event: CharDone) -> None:
        self.char_running = False
        if self.grads is None and not self._grads_started:
            self._grads_started = True
            self._grads()
        elif self._long_pending:
            self._long_pending = False
            self.action_long_range()
        status = self.query_one("#char-status", Static)
        if event.error:
            status.update(Text(event.error, style="red"))  # inert (first_line), never markup
            return
        first = next((r.epoch + 1 for r in self.char_rows if r.decoded == TARGET), None)
        if first is not None:
            status.update(f"says [b green]'{TARGET}'[/] from epoch {first} "
                          f"([b]r[/] trains again)")
        else:
            status.update(f"not yet '{TARGET}' after {len(self.char_rows)} epochs "
                          f"([b]r[/] again)")

    # ---- gradient per time step (cheap) -------------------------------------------------------
    @work(thread=True, name="timestep-gradients", group="grads", exit_on_error=False)
    def _grads(self) -> None:
        from tui_nn.lessons.sequence import timestep_gradients
        from tui_nn.tui.bridge import in_fresh_thread

        try:
            grads = in_fresh_thread(lambda: timestep_gradients(length=self.grad_length,
                                                               batch=32),
                                    "tui-nn-grads")
        except Exception as exc:  # noqa: BLE001
            self.post_message(GradsReady(None, first_line(exc, with_type=True)))
            return
        self.post_message(GradsReady(grads, None))

    @on(GradsReady)
    def _grads_ready(self, event: GradsReady) -> None:
        self._grads_done = True
        if self._long_pending:
            self._long_pending = False
            self.action_long_range()
        view = self.query_one("#grad-view", Static)
        if event.error or not event.grads:
            view.update(Text(event.error or "", style="red"))
            return
        self.grads = event.grads
        self._show_grads()

    def _show_grads(self) -> None:
        if not self.grads:
            return
        width = max(10, min(self.grad_length, self.query_one("#seq-long").size.width - 26))
        text = Text(f"‖∂loss/∂x_t‖ at init, t = 0…{self.grad_length - 1} (log):\n",
                    style="dim")
        for cell in CELLS:
            g = self.grads.get(cell)
            if g is None:
                continue
            ratio = g.first_over_last
            text.append(f"{cell.upper():<5}", "bold")
            text.append(sparkline(g.norms, width),
                        "red" if ratio < 1e-3 else "green")
            text.append(f" x₀/x_L {ratio:.0e}\n" if math.isfinite(ratio) else " -\n")
        text.rstrip()
        self.query_one("#grad-view", Static).update(text)

    def on_resize(self) -> None:
        self._show_grads()

    # ---- long-range table (trains: user starts it) ---------------------------------------------
    def action_long_range(self) -> None:
        if self.long_running:
            self._long_stop.set()
            self.query_one("#long-status", Static).update("[dim]stopping after this epoch…[/]")
            return
        if self.char_running or (self._grads_started and not self._grads_done):
            self._long_pending = True  # starts when the char RNN (and gradients) are done
            self.query_one("#long-status", Static).update(
                "[dim]starts after the char RNN…[/]")
            return
        bridge = getattr(getattr(self.app, "main", None), "bridge", None)
        if bridge is not None and bridge.running:
            self.notify("a run is training: this table shares the CPU with it and slows it "
                        "down (l again stops the table)", severity="warning", timeout=6,
                        markup=False)
        self.long_running = True
        self.long_results = []
        self.long_table = None
        table = self.query_one("#long-table", DataTable)
        for length in self.long_options["lengths"]:
            for cell in CELLS:
                table.update_cell(str(length), cell, "·")
        self.query_one("#long-progress", ProgressBar).update(progress=0)
        self._long_stop = threading.Event()
        self._long_t0 = time.monotonic()
        self._show_long_status()
        self._train_long(dict(self.long_options), self._long_stop)

    @work(thread=True, name="long-range", group="long-range", exit_on_error=False)
    def _train_long(self, options: dict[str, Any], stop: threading.Event) -> None:
        from tui_nn.lessons.sequence import long_range_comparison
        from tui_nn.tui.bridge import in_fresh_thread

        try:
            table = in_fresh_thread(lambda: long_range_comparison(
                cells=CELLS, on_result=lambda r: self.post_message(LongResult(r)), stop=stop,
                **options), "tui-nn-long-range")
        except Exception as exc:  # noqa: BLE001
            self.post_message(LongDone(None, first_line(exc, with_type=True)))
            return
        self.post_message(LongDone(table, None))

    @on(LongResult)
    def _long_result(self, event: LongResult) -> None:
        r = event.result
        self.long_results.append(r)
        pct = f"{100 * r.accuracy:.0f}%"
        style = "green" if r.accuracy >= 0.9 else ("red" if r.accuracy < 0.4 else "yellow")
        self.query_one("#long-table", DataTable).update_cell(str(r.length), r.cell,
                                                             Text(pct, style))
        self.query_one("#long-progress", ProgressBar).advance(1)
        self._show_long_status()

    @on(LongDone)
    def _long_done(self, event: LongDone) -> None:
        self.long_running = False
        self.long_table = event.table
        if event.error:
            self.query_one("#long-status", Static).update(Text(event.error, style="red"))
            return
        self._show_long_status()

    def _show_long_status(self) -> None:
        o = self.long_options
        settings = (f"{o['epochs']} epochs of {o['n_train']} sequences, hidden "
                    f"{o['hidden_size']}, Adam lr {o['lr']:g}; chance is 25%")
        if self.long_running:
            done = len(self.long_results)
            total = len(o["lengths"]) * len(CELLS)
            line = (f"training {done}/{total} ({time.monotonic() - self._long_t0:.0f} s); "
                    f"[b]l[/] stops")
        elif self.long_table is not None:
            t = self.long_table
            state = "done" if t.complete else "stopped"
            line = f"{state} in {t.seconds:.0f} s; [b]l[/] trains again"
        else:
            line = "[b]l[/] trains the table (about 20-40 s on 2 CPU cores)"
        self.query_one("#long-status", Static).update(f"{line}\n[dim]{settings}[/]")
