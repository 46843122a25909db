"""How a screen reports its failed workers: one notification each, never a crash. The main
screen's handler also logs the failure and updates the run state."""

from __future__ import annotations

from textual.screen import Screen
from textual.worker import Worker, WorkerState


def notify_worker_error(screen: Screen, event: Worker.StateChanged) -> str | None:
    """The notification for a failed worker; its text, or None when the worker did not fail."""
    if event.state != WorkerState.ERROR:
        return None
    error = event.worker.error
    text = f"{type(error).__name__}: {error}" if error is not None else "unknown error"
    screen.notify(text, title=f"{event.worker.name or 'worker'} failed", severity="error",
                  timeout=12, markup=False)
    return text


class NotifiesWorkerErrors:
    """Mixed into a secondary screen (runs, watch, the lessons): the one place its workers'
    failures surface."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        notify_worker_error(self, event)
