"""The system pane: GPU utilisation, memory, temperature and power per visible GPU, and CPU and
memory of the training process.

A thread worker reads tui_nn.system every ``interval`` seconds (2 s) and posts the reading; the
pane only formats it. The readings are NVML queries and psutil reads: they run
off the UI thread and off the training loop (benchmarks/bench_system_pane.py times them).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable

from rich.text import Text
from textual import work
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from tui_nn.fmt import fmt_bytes, fmt_bytes_pair
from tui_nn.system import GpuReport, ProcessStats, gpu_stats, process_stats
from tui_nn.tui.widgets.run_memory import RunMemory, run_memory_text
from tui_nn.tui.widgets.wrapping import wrapped_height

INTERVAL_S = 2.0


@dataclass(frozen=True)
class SystemReading:
    gpu: GpuReport
    process: ProcessStats | None  # None: no training process to look at
    process_note: str | None = None  # why process is None ("run not running")


def read_system(pid: int | None, gpu_reader: Callable[[], GpuReport] | None = None,
                process_reader: Callable[[int], ProcessStats] | None = None,
                process_note: str | None = None) -> SystemReading:
    """One reading: every visible GPU, and process pid when there is one."""
    gpu = (gpu_reader or gpu_stats)()
    proc = (process_reader or process_stats)(pid) if pid is not None else None
    return SystemReading(gpu, proc, process_note)


def format_reading(r: SystemReading, compact: bool = False) -> str:
    """Rich markup for the pane; compact drops the GPU name and the power limit."""
    lines = []
    if not r.gpu.available:
        reason = r.gpu.reason or "no NVIDIA GPU"
        if compact and reason == "no NVIDIA GPU":
            reason = "none"
        elif compact and reason.startswith("no NVIDIA GPU ("):
            reason = "none " + reason[len("no NVIDIA GPU "):]
        lines.append(f"[b]GPU[/b] [dim]{reason}[/]")
    for g in r.gpu.gpus:
        parts = []
        if g.utilization_pct is not None:
            parts.append(f"{g.utilization_pct:.0f}%")
        if g.memory_used_bytes is not None:
            parts.append(f"mem {fmt_bytes_pair(g.memory_used_bytes, g.memory_total_bytes)}")
        if g.temperature_c is not None:
            parts.append(f"{g.temperature_c:.0f}°C")
        if g.power_w is not None:
            limit = f"/{g.power_limit_w:.0f}" if g.power_limit_w and not compact else ""
            parts.append(f"{g.power_w:.0f}{limit} W")
        name = "" if compact else f" {g.name}"
        lines.append(f"[b]GPU{g.index}[/b]{name} " + " · ".join(parts))
    p = r.process
    if p is None:
        lines.append(f"[b]proc[/b] [dim]{r.process_note or 'no training process'}[/]")
    elif not p.available:
        lines.append(f"[b]proc[/b] [dim]{p.reason}[/]")
    else:
        ram = ""
        if p.ram_total_bytes and p.ram_available_bytes is not None:
            used = p.ram_total_bytes - p.ram_available_bytes
            ram = f" · RAM {fmt_bytes_pair(used, p.ram_total_bytes)}"
        cpu = f"{p.cpu_percent:.0f}%" if p.cpu_percent is not None else "?"
        # Compact: no label (RSS says it is a process) so the line fits a narrow pane whole.
        who = "" if compact else f"[b]proc[/b] {p.pid} "
        # RSS moves by MiB: whole MiB, or GiB to 10 MiB.
        rss = fmt_bytes(p.rss_bytes, places=2 if (p.rss_bytes or 0) >= 2**30 else 0)
        lines.append(f"{who}CPU {cpu} · RSS {rss}{ram}")
    return "\n".join(lines)


class SystemPane(Static):
    """GPU and training-process readings, refreshed every ``interval`` seconds.

    ``pid`` is the process to read (default: this one, where the Train tab trains); ``watch``
    sets it to the run's writer, or None with ``process_note`` when the run is not running."""

    DEFAULT_CSS = """
    SystemPane { height: auto; color: $text-muted; padding: 0 0 0 1; }
    SystemPane.-compact { max-height: 5; }
    """

    @dataclass
    class Reading(Message):
        reading: SystemReading

    run_memory: reactive[RunMemory | None] = reactive(None, init=False)
    """The live run's memory line (predicted vs measured); None: no such line."""

    data_wait: reactive[int | None] = reactive(None, init=False)
    """Percent of each step the run waited for its batches (streamed data); None: no line.
    Set as a share of the step (NaN: none)."""

    def __init__(self, *, compact: bool = False, interval: float = INTERVAL_S,
                 gpu_reader: Callable[[], GpuReport] | None = None,
                 pid: int | None = -1, process_note: str | None = None, **kwargs) -> None:
        super().__init__("[dim]system: reading…[/]", **kwargs)
        self.compact = compact
        if compact:
            self.add_class("-compact")
        self.interval = interval
        self.gpu_reader = gpu_reader
        self.pid: int | None = os.getpid() if pid == -1 else pid
        self.process_note = process_note
        self.reading: SystemReading | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.frozen = False
        self._lines = -1  # lines of the text shown
        self._markup = ""  # the reading's text, as last shown

    def validate_data_wait(self, share: float | None) -> int | None:
        return None if share is None or share != share else round(min(max(share, 0), 1) * 100)

    def _redraw(self) -> None:
        if self._markup:
            self._show(self._markup)

    watch_run_memory = watch_data_wait = _redraw

    def on_mount(self) -> None:
        self._sample_loop()

    def on_unmount(self) -> None:
        self._stop.set()
        self._wake.set()

    def freeze(self, reading: SystemReading) -> None:
        """Show this reading from now on and stop sampling (snapshots, screenshots)."""
        self.frozen = True
        self._stop.set()
        self._wake.set()
        self.reading = reading
        self._show(format_reading(reading, self.compact))

    def refresh_now(self) -> None:
        """Read again without waiting for the timer (the watched process changed)."""
        self._wake.set()

    @work(thread=True, name="system", group="system", exclusive=True, exit_on_error=False)
    def _sample_loop(self) -> None:
        worker = get_current_worker()
        while not (worker.is_cancelled or self._stop.is_set()):
            reading = read_system(self.pid, self.gpu_reader, process_note=self.process_note)
            self.post_message(self.Reading(reading))
            self._wake.wait(self.interval)
            self._wake.clear()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed reading shows in the pane (the readings never raise; this is a bug)."""
        if event.state == WorkerState.ERROR:
            self._show(f"[b]system[/b] [red]readings stopped: {event.worker.error}[/]")

    def on_system_pane_reading(self, message: Reading) -> None:
        message.stop()
        if self.frozen:
            return
        self.reading = message.reading
        self._show(format_reading(message.reading, self.compact))

    def on_resize(self) -> None:
        self._lines = -1  # a new width may wrap the lines differently
        self._redraw()

    def _show(self, text: str) -> None:
        # Lines wrap rather than end in "…" (no number is cut). Compact (the Train tab,
        # redrawn every 2 s while training): a layout pass only when the wrapped height
        # changed, as a layout of the whole screen is the expensive part.
        self._markup = text
        rich = Text.from_markup(text)
        if self.run_memory is not None:
            # Our markup, then the memory line as plain text: its figures are not markup.
            rich.append("\n")
            rich.append_text(run_memory_text(self.run_memory, short=self.compact))
        if self.data_wait is not None:  # an input-bound run shows here
            rich.append(f"\ndata: waiting {self.data_wait}% of each step")
        lines = wrapped_height(rich, self.content_size.width, self.app.console)
        self.update(Content.from_rich_text(rich),
                    layout=not self.compact or lines != self._lines)
        self._lines = lines
