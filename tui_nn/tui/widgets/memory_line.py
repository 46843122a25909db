"""One line under the Model tab: will training this model fit, at the form's batch size and
optimizer? The estimate (tui_nn.shapes.memory) traces a training forward on meta in a thread
worker; a result that arrives after a newer change is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static

from tui_nn.fmt import fmt_bytes
from tui_nn.textsafe import first_line
from tui_nn.tui.widgets.run_memory import estimate_memory

if TYPE_CHECKING:
    from tui_nn.shapes.memory import MemoryEstimate

DEBOUNCE_S = 0.3


def describe(m: MemoryEstimate) -> Text:
    """'training batch 64, adam: 3.3 MiB; fits … (up to batch N) · activations …, …': the
    verdict first, the breakdown after it (a narrow terminal cuts the end)."""
    text = Text()
    text.append("training ", style="bold")
    text.append(f"batch {m.batch_size}, {m.optimizer}: ")
    text.append(fmt_bytes(m.total), style="bold")
    if m.budget is not None:
        ok = bool(m.fits)
        text.append(f"; {'fits' if ok else 'does not fit'} the GPU's {fmt_bytes(m.budget)}",
                    style="green" if ok else "bold red")
        text.append(f" (up to batch {m.max_batch:,})")
    text.append(f" · activations {fmt_bytes(m.activations)}, params {fmt_bytes(m.params)}, grads "
                f"{fmt_bytes(m.grads)}, {m.optimizer} state {fmt_bytes(m.optimizer_state)}",
                style="dim")
    return text


class MemoryLine(Static):
    """The training-memory estimate for ``source`` at ``input_text``, ``batch_size``,
    ``optimizer``; posts Estimated after each run."""

    @dataclass
    class Estimated(Message):
        """An estimate finished (``estimate`` None: it could not be made; ``error`` says why)."""

        estimate: MemoryEstimate | None
        error: str | None
        generation: int

    source: reactive[str | None] = reactive(None)
    """The model: a zoo name or a source string (its object via register_model)."""

    input_text: reactive[str] = reactive("")
    """The inspector's input shape text; the batch dimension is replaced by batch_size."""

    batch_size: reactive[int | None] = reactive(None)
    """The training form's batch size (None while the field is invalid)."""

    optimizer: reactive[str] = reactive("adam")
    """The training form's optimizer."""

    estimate: reactive[MemoryEstimate | None] = reactive(None)
    """The latest estimate shown (None before the first, or when it failed)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", **kwargs)
        self._generation = 0
        self._shown = 0
        self._timer: Timer | None = None
        self._models: dict[str, Any] = {}

    def register_model(self, source: str, model: Any) -> None:
        self._models[source] = model

    @property
    def pending(self) -> bool:
        """An estimate is scheduled or running and not yet shown."""
        return self._timer is not None or self._shown != self._generation

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_S, self._start)

    watch_source = watch_input_text = watch_batch_size = watch_optimizer = _schedule

    def _start(self) -> None:
        self._timer = None
        if self.source is None or self.batch_size is None:
            return
        self._generation += 1
        target = self._models.get(self.source, self.source)
        self._estimate(target, self.input_text.strip() or None, self.batch_size, self.optimizer,
                       self._generation)

    @work(thread=True, exclusive=True, group="memory", exit_on_error=False)
    def _estimate(self, target: Any, input_text: str | None, batch_size: int, optimizer: str,
                  generation: int) -> None:
        """On a worker thread: estimate and post the result; never raises."""
        estimate, error = None, None
        try:
            estimate = estimate_memory(target, input_text, batch_size, optimizer)
            if estimate is None:
                error = "the training forward does not run at this input"
        except Exception as exc:  # noqa: BLE001 - shown on the line, never a crash
            error = first_line(exc)  # shown as Text: made inert
        self.post_message(self.Estimated(estimate, error, generation))

    @on(Estimated)
    def _estimated(self, event: Estimated) -> None:
        if event.generation != self._generation:
            event.stop()
            return
        self._shown = event.generation
        self.estimate = event.estimate
        if event.estimate is not None:
            self.update(describe(event.estimate))
        else:
            self.update(Text(f"training memory: {event.error}", style="dim"))
