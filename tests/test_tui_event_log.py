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


async def test_lines_written_while_hidden_are_whole_when_shown_again():
    app = Tabs()
    async with app.run_test(size=(80, 20)) as pilot:
        tabs = app.query_one(TabbedContent)
        mini = app.query_one("#mini", EventLog)
        tabs.active = "train"
        await pilot.pause()
        mini.add("epoch 1 · loss 0.1234 · acc 97.85%")  # sized: written at once
        tabs.active = "log"
        await pilot.pause()
        mini.add("checkpoint written: last.pt (4.9s)")  # hidden now
        mini.add("epoch 2 · loss 0.0466 · acc 98.10%")
        tabs.active = "train"
        await pilot.pause()
        rows = [strip.text.rstrip() for strip in mini.lines]
        assert rows == ["epoch 1 · loss 0.1234 · acc 97.85%",
                        "checkpoint written: last.pt (4.9s)",
                        "epoch 2 · loss 0.0466 · acc 98.10%"]


async def test_a_log_hidden_for_long_keeps_only_its_bound():
    app = Tabs()
    async with app.run_test(size=(80, 20)) as pilot:
        tabs = app.query_one(TabbedContent)
        mini = app.query_one("#mini", EventLog)
        tabs.active = "train"
        await pilot.pause()
        tabs.active = "log"
        await pilot.pause()
        for i in range(mini.max_lines + 50):
            mini.add(f"line {i}")
        assert len(mini._deferred_renders) <= mini.max_lines
        tabs.active = "train"
        await pilot.pause()
        rows = [strip.text.rstrip() for strip in mini.lines]
        assert len(rows) == mini.max_lines and rows[-1] == f"line {mini.max_lines + 49}"
