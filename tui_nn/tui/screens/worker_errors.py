"""How a secondary screen (runs, watch) reports its failed workers: one notification each, never
a crash (the main screen has its own handler, which also updates the run state)."""

from __future__ import annotations

from textual.screen import Screen
from textual.worker import Worker, WorkerState


def notify_worker_error(screen: Screen, event: Worker.StateChanged) -> None:
    if event.state == WorkerState.ERROR:
        error = event.worker.error
        screen.notify(f"{type(error).__name__}: {error}", title=f"{event.worker.name} failed",
                      severity="error", timeout=12, markup=False)
