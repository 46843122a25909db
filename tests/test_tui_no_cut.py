"""No number is ever cut off (issue 31.1): at 80×24 and 120×36 the Train tab while training and
`tui-nn watch` show every figure whole; labels shorten or lines wrap first, never '…' inside a
number. Snapshots, plus the figures asserted on the screen's text."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest

from demo import demo_reading, replay, settle, synthetic_run
from test_watch import no_nvml, write_run
from test_watch_snapshots import _until
from tui_nn.tui.app import make_app
from tui_nn.tui.screens.watch import WatchApp
from tui_nn.tui.widgets.run_memory import RunMemory
from tui_nn.tui.widgets.system_pane import SystemPane

SIZES = [(80, 24), (120, 36)]
MIB = 2 ** 20
# The figures the issue found cut: the RAM total, the memory line with its ratio, the
# parameter count; and the rest of the status. (A line may wrap between a figure and its unit.)
WHOLE = ["8,490", "9,600", "3.0/8.0", "3.2", "(1.00×)", "5,120", "0.01", "512.0", "612"]


def screen_text(app) -> str:
    """The screen as rows of plain text (from the SVG the snapshot is made of)."""
    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)),
                                                       html.unescape(m.group(3))))
    return "\n".join("".join(t for _, t in sorted(r)).replace("\xa0", " ")
                     for _, r in sorted(rows.items()))


def assert_whole(text: str, figures: list[str]) -> None:
    for figure in figures:
        assert re.search(rf"(?<![\d,.]){re.escape(figure)}(?![\d,])", text), (figure, text)
    assert not re.search(r"[\d.,%(×]…", text), text  # nothing cut inside or after a number


def _started_with_memory(events):
    first = dataclasses.replace(events[0], memory_measured={
        "batch_size": 64, "saved_activation_bytes": int(3.2 * MIB)})
    return [first] + events[1:]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x36"])
def test_train_tab_while_training_keeps_every_number(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        main = pilot.app.main
        main.show_tab("train")
        await replay(pilot, _started_with_memory(synthetic_run(upto_step=420)))
        pane = main.query_one(SystemPane)
        pane.run_memory = RunMemory(64, measured=int(3.2 * MIB), predicted=int(3.2 * MIB))
        await pilot.pause(0.2)
        assert_whole(screen_text(pilot.app), WHOLE)

    assert snap_compare(make_app(model="cnn"), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x36"])
def test_watch_keeps_every_number(snap_compare, tmp_path, size):
    run = write_run(tmp_path / "20250101-120000-cnn-digits",
                    _started_with_memory(synthetic_run(upto_step=420)))

    async def run_before(pilot):
        screen = pilot.app.watch_screen
        await _until(lambda: screen.status not in ("loading",) and screen.view.started is not None)
        pane = screen.query_one(SystemPane)
        pane.freeze(demo_reading())
        await pilot.pause(0.3)
        assert_whole(screen_text(pilot.app), [f for f in WHOLE if f not in ("(1.00×)", "5,120")])

    assert snap_compare(WatchApp(run, gpu_reader=no_nvml), terminal_size=size,
                        run_before=run_before)
