"""What the lesson views share: a screen pushed over the main screen, with the app's header
and footer, that Escape closes; and a plot widget that times its own redraws.

The lesson views (activation functions, loss landscape, sequence models, autograd graph) show
the seed notes' lessons without a run in progress. Anything that trains runs in a thread
worker that posts messages; the screen draws what they carry.
"""

from __future__ import annotations

import time

from textual.binding import Binding
from textual.screen import Screen

from tui_nn.tui.screens.worker_errors import NotifiesWorkerErrors
from tui_nn.tui.widgets.plot_visual import MatrixPlot


class LessonScreen(NotifiesWorkerErrors, Screen):
    """Base for the lesson views: Escape (or q) goes back to the main screen; a failed worker
    is a notification, never the end of the app."""

    BINDINGS = [
        Binding("escape", "close", "Back", tooltip="Back to the main screen"),
    ]

    def action_close(self) -> None:
        if self.app.screen is self:
            self.app.pop_screen()


class TimedPlot(MatrixPlot):
    """A PlotextPlot that rebuilds its figure with ``draw(plt)`` on every render and records
    what one rebuild cost (render_s, the last one; redraws, how many), for the benchmark."""

    def __init__(self, draw=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._draw = draw
        self.redraws = 0
        self.render_s = 0.0

    def render(self):
        t0 = time.perf_counter()
        plt = self.plt
        plt.clear_figure()
        if self._draw is not None:
            self._draw(plt, self.size.width, self.size.height)
        self.redraws += 1
        try:
            return super().render()
        finally:
            self.render_s = time.perf_counter() - t0
