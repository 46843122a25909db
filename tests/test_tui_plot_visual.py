"""Plots are drawn from plotext's cell matrix (tui_nn.tui.widgets.plot_visual), not from its
ANSI string parsed back through Rich: every cell must come out as textual-plotext's own path
draws it (character, colours, attributes), on every plot kind the live curves show."""

from __future__ import annotations

import math

import pytest
from rich.text import Text
from textual.app import App
from textual.visual import Visual, visualize

from tui_nn.tui.history import RunHistory
from tui_nn.tui.widgets import plot_visual
from tui_nn.tui.widgets.curves import Curves, LossPlot, MetricPlot


def _history(diverging: bool = False) -> RunHistory:
    history = RunHistory()
    history.reset("accuracy")
    for k in range(6):
        start = k * 200
        losses = [2.0 * math.exp(-(start + i) / 300) + 0.05 * ((i * 7919) % 13) / 13
                  for i in range(200)]
        if diverging and k == 5:
            losses = [loss * 1e38 for loss in losses]  # compact y ticks
        history.add_steps(start + 1, losses)
        history.add_epoch(k, start + 200, 0.4 - 0.03 * k, 0.3, 0.80 + 0.02 * k)
    return history


class Plots(App):
    def __init__(self, history: RunHistory) -> None:
        super().__init__()
        self.history = history

    def compose(self):
        yield Curves(self.history)


def _cells(strips) -> list[list[tuple]]:
    rows = []
    for strip in strips:
        row = []
        for segment in strip:
            s = segment.style
            attrs = (s.color, s.bgcolor, bool(s.bold), bool(s.dim), bool(s.italic),
                     bool(s.underline), bool(s.reverse)) if s else None
            row.extend((ch, attrs) for ch in segment.text)
        rows.append(row)
    return rows


def _ansi_path(plot) -> list:
    """What textual-plotext draws: plotext's ANSI string through Rich and Textual's Content
    (the plot's figure is already set up by the render that came before)."""
    visual = visualize(plot, Text.from_ansi(plot.plt.build()))
    return Visual.to_strips(plot, visual, *plot.size, plot.visual_style)


@pytest.mark.parametrize("log_scale, diverging", [(False, False), (True, False), (False, True)])
async def test_every_cell_matches_textual_plotexts_ansi_path(log_scale, diverging):
    app = Plots(_history(diverging))
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one(Curves).log_scale = log_scale
        await pilot.pause()
        for cls in (LossPlot, MetricPlot):
            plot = app.query_one(cls)
            visual = plot.render()
            assert isinstance(visual, plot_visual.PlotVisual)
            width, height = plot.size
            ours = _cells(Visual.to_strips(plot, visual, width, height, plot.visual_style))
            theirs = _cells(_ansi_path(plot))
            assert len(ours) == len(theirs) == height
            assert ours == theirs, cls.__name__
            assert visual.plain == Text.from_ansi(plot.plt.build()).plain  # what tests read
            drawn = "".join(ch for row in ours for ch, _ in row)
            assert "loss" in drawn or "accuracy" in drawn
            assert any(0x2800 < ord(ch) <= 0x28FF for ch in drawn)  # braille: a curve


async def test_a_plotext_without_the_matrix_falls_back_to_its_ansi_string(monkeypatch):
    monkeypatch.setattr(plot_visual, "figure_rows", lambda figure: None)
    app = Plots(_history())
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        plot = app.query_one(LossPlot)
        rendered = plot.render()
        assert isinstance(rendered, Text) and "loss" in rendered.plain


class Titled(App):
    def compose(self):
        yield plot_visual.MatrixPlot()

    def on_mount(self) -> None:
        plt = self.query_one(plot_visual.MatrixPlot).plt
        plt.title("run \x1b]0;pwned\x07 \x1b[2J \x9b6n")  # a name from a file, unclean
        plt.plot([1, 2, 3], [3, 1, 2], marker="braille")


async def test_a_control_character_in_a_cell_is_drawn_inert_not_sent():
    app = Titled()
    async with app.run_test(size=(60, 16)) as pilot:
        await pilot.pause()
        plot = app.query_one(plot_visual.MatrixPlot)
        strips = Visual.to_strips(plot, plot.render(), *plot.size, plot.visual_style)
        text = "".join(segment.text for strip in strips for segment in strip)
        assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text)
        title = next(strip.text for strip in strips if "run" in strip.text)
        # one cell for one character: what follows stays where plotext put it
        assert "run \ufffd]0;pwned\ufffd \ufffd[2J \ufffd6n" in title
        assert all(strip.cell_length == plot.size.width for strip in strips)
