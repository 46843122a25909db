"""The system pane's memory line while a run is live: what `inspect --batch-size` predicts for
the run's batch beside what the trainer measured at setup (RunStarted.memory_measured):

    memory at batch 64: activations predicted 3.1 MiB · measured 3.2 MiB

The measured dict comes from the engine or from a metrics.jsonl (watch): its values are
checked to be byte counts before they are formatted; nothing in it is read as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text

from tui_nn.engine.schema import MAX_INT
from tui_nn.fmt import fmt_bytes

if TYPE_CHECKING:
    from tui_nn.shapes.memory import MemoryEstimate


@dataclass(frozen=True)
class RunMemory:
    batch_size: int
    measured: int  # bytes one training forward saved for backward (loss included)
    predicted: int | None = None  # the meta estimate's activations at the same batch
    gpu_allocated: int | None = None  # CUDA: the most memory_allocated a report has shown


def _count(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT
    return value if ok else None


def run_memory_from(started: Any) -> RunMemory | None:
    """The line's figures from a RunStarted; None when the run measured nothing (an older
    engine, a measurement that failed) or the record holds something else than byte counts."""
    measured = getattr(started, "memory_measured", None)
    if not isinstance(measured, dict):
        return None
    batch = _count(measured.get("batch_size"))
    saved = _count(measured.get("saved_activation_bytes"))
    if not batch or saved is None:
        return None
    return RunMemory(batch_size=batch, measured=saved)


def run_memory_text(m: RunMemory, short: bool = False) -> Text:
    """short: without the word 'activations' (a narrow pane; the line wraps after that)."""
    text = Text()
    text.append("memory", style="bold")
    text.append(f" at batch {m.batch_size}: {'' if short else 'activations '}")
    if m.predicted is not None:
        text.append(f"predicted {fmt_bytes(m.predicted)} · ")
    text.append(f"measured {fmt_bytes(m.measured)}")
    if m.predicted:
        text.append(f" ({m.measured / m.predicted:.2f}×)", style="dim")
    if m.gpu_allocated is not None:
        text.append(f" · GPU allocated up to {fmt_bytes(m.gpu_allocated)}")
    return text


def estimate_memory(target: Any, input_text: str | None, batch_size: int,
                    optimizer: str = "adam") -> MemoryEstimate | None:
    """The training-memory estimate for `target` at `batch_size` (None when the training forward
    does not run). Traces on meta: call it from a thread worker, never the UI thread."""
    from tui_nn.shapes import inspect_model
    from tui_nn.shapes.memory import MemoryRequest
    from tui_nn.tui.bridge import in_fresh_thread

    request = MemoryRequest(batch_size=batch_size, optimizer=optimizer)
    return in_fresh_thread(lambda: inspect_model(target, input_text, memory=request).memory,
                           "tui-nn-memory")
