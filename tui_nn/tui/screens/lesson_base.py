"""What the lesson views share: a screen pushed over the main screen, with the app's header
and footer, that Escape closes.

The lesson views (activation functions, loss landscape, sequence models, autograd graph) show
the seed notes' lessons without a run in progress. Anything that trains runs in a thread
worker that posts messages; the screen draws what they carry.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen

from tui_nn.tui.screens.worker_errors import NotifiesWorkerErrors


class LessonScreen(NotifiesWorkerErrors, Screen):
    """Base for the lesson views: Escape (or q) goes back to the main screen; a failed worker
    is a notification, never the end of the app."""

    BINDINGS = [
        Binding("escape", "close", "Back", tooltip="Back to the main screen"),
    ]

    def action_close(self) -> None:
        if self.app.screen is self:
            self.app.pop_screen()
