"""The event log under the curves is written while its tab is hidden (the user reads the Log
tab during a run): those lines must come back whole, not wrapped one character per row."""

from __future__ import annotations

from textual.app import App
from textual.widgets import TabbedContent, TabPane

from tui_nn.tui.widgets.event_log import EventLog


class Tabs(App):
    def compose(self):
        with TabbedContent(initial="log", id="tabs"):
            with TabPane("Log", id="log"):
                yield EventLog(id="shown")
            with TabPane("Train", id="train"):
                yield EventLog(id="mini")


async def _show(pilot, tab: str) -> None:
    pilot.app.query_one(TabbedContent).active = tab
    await pilot.pause()


async def test_lines_written_while_hidden_are_whole_when_shown_again():
    app = Tabs()
    async with app.run_test(size=(80, 20)) as pilot:
        mini = app.query_one("#mini", EventLog)
        await _show(pilot, "train")
        mini.add("epoch 1 · loss 0.1234 · acc 97.85%")  # sized: written at once
        await _show(pilot, "log")
        mini.add("checkpoint written: last.pt (4.9s)")  # hidden now
        mini.add("epoch 2 · loss 0.0466 · acc 98.10%")
        await _show(pilot, "train")
        rows = [strip.text.rstrip() for strip in mini.lines]
        assert rows == ["epoch 1 · loss 0.1234 · acc 97.85%",
                        "checkpoint written: last.pt (4.9s)",
                        "epoch 2 · loss 0.0466 · acc 98.10%"]


async def test_a_log_hidden_for_long_keeps_only_its_bound():
    app = Tabs()
    async with app.run_test(size=(80, 20)) as pilot:
        mini = app.query_one("#mini", EventLog)
        await _show(pilot, "train")
        await _show(pilot, "log")
        for i in range(mini.max_lines + 50):
            mini.add(f"line {i}")
        assert len(mini._deferred_renders) <= mini.max_lines
        await _show(pilot, "train")
        rows = [strip.text.rstrip() for strip in mini.lines]
        assert len(rows) == mini.max_lines and rows[-1] == f"line {mini.max_lines + 49}"


class Short(App):
    CSS = "#mini { height: 6; }"

    def compose(self):
        yield EventLog(id="mini")


async def test_a_line_scrolls_the_log_without_laying_out_the_screen(monkeypatch):
    """A line grows the log's virtual size, which laid out the whole screen each time (9 ms a
    line on the Train tab, taken from the training run's cores); the log's box never depends
    on its lines, so only its scroll position and scrollbar move."""
    app = Short()
    async with app.run_test(size=(60, 20)) as pilot:
        mini = app.query_one("#mini", EventLog)
        for i in range(12):
            mini.add(f"line {i}")
        await pilot.pause()
        layouts = []
        original = type(app.screen)._refresh_layout
        monkeypatch.setattr(type(app.screen), "_refresh_layout",
                            lambda self, *a, **k: (layouts.append(1), original(self, *a, **k)))
        for i in range(12, 40):
            mini.add(f"line {i}")
            await pilot.pause()
        assert layouts == []
        bar = mini.vertical_scrollbar
        assert bar.window_virtual_size == 40 and bar.window_size == 6 and bar.position == 34
        assert mini.scroll_y == mini.max_scroll_y == 34
        shown = [strip.text.rstrip() for strip in mini.render_lines(mini.size.region)]
        assert shown[-1].startswith("line 39")
