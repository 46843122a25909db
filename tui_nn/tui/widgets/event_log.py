"""A log of run events and errors (no wall-clock times: the step says when)."""

from __future__ import annotations

from rich.text import Text
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import RichLog

from tui_nn.textsafe import clean

LEVEL_STYLES = {"info": "", "good": "green", "warning": "yellow", "error": "bold red",
                "dim": "dim"}


class EventLog(RichLog):
    """Append-only, bounded log shown in the Log tab (and under the curves on tall screens)."""

    DEFAULT_CSS = """
    EventLog { height: 1fr; scrollbar-gutter: stable; }
    """

    # Each line grows the virtual size, a reactive that lays out the whole screen (a Widget's
    # size may follow its content): 9 ms per line on the Train tab, on the cores a run trains
    # on. A log's box is set by CSS alone (no height: auto here), so a line only moves its
    # scrollbar (watch_virtual_size); a scrollbar that appears still asks for a layout.
    virtual_size = Reactive(Size(0, 0), layout=False)

    def __init__(self, **kwargs) -> None:
        # min_width=1: RichLog renders at least 78 cells wide by default, so on a narrower
        # pane the end of each wrapped line was hidden; the stable gutter keeps lines written
        # before the scrollbar appeared as narrow as those written after.
        super().__init__(max_lines=2000, wrap=True, markup=False, highlight=False, min_width=1,
                         **kwargs)
        self.lines_written: list[str] = []  # plain copy, bounded like the widget (tests read it)

    def add(self, text: str, level: str = "info") -> None:
        """Append a line; text may hold strings from files or other programs, so it is shown
        through textsafe.clean as plain Text (never markup, never a control sequence)."""
        text = clean(text)
        self.lines_written.append(text)
        del self.lines_written[:-2000]
        self.write(Text(text, style=LEVEL_STYLES.get(level, "")))

    def watch_virtual_size(self, size: Size) -> None:
        if self.container_size:  # laid out (not before the first layout, not while hidden)
            self._scroll_update(size)
            self.refresh()

    def write(self, content, *args, **kwargs):  # noqa: ANN001, ANN201 - RichLog.write's
        if self._size_known and self.scrollable_content_region.width <= 0:
            # Hidden (its tab is not shown): RichLog would wrap the line at one cell, a
            # character per row. Deferred instead, as RichLog defers writes before its first
            # layout: the Resize that shows it again writes them, in order.
            self._size_known = False
        if not self._size_known:
            while len(self._deferred_renders) >= self.max_lines:  # bounded like the log
                self._deferred_renders.popleft()
        return super().write(content, *args, **kwargs)
