"""A plotext figure drawn straight into Textual strips (MatrixPlot: a PlotextPlot that does).

textual-plotext renders a plot by asking plotext for its ANSI string, which Rich parses back
into a Text and Textual converts into Content and then into strips: three conversions of
every cell, two thirds of a live plot redraw's cost. Here the figure's cell matrix (character,
foreground, style, background per cell, which plotext builds before its string) becomes one
Segment per run of cells sharing colours, each colour triple decoded once through Rich's own
ANSI decoder, so the cells come out as the ANSI path draws them. The ANSI path parsed any
escape sequence in a title or label away; here a control character in a cell is drawn as one
U+FFFD (textsafe.inert_cells), never sent to the terminal.
"""

from __future__ import annotations

from functools import lru_cache

from plotext import _utility as plotext_utility
from rich.ansi import AnsiDecoder
from rich.segment import Segment
from rich.style import Style as RichStyle
from rich.text import Text
from textual.strip import Strip
from textual.style import Style
from textual.visual import RenderOptions, Visual
from textual_plotext import PlotextPlot

from tui_nn.textsafe import inert_cells

Colours = tuple  # (foreground, style, background) as plotext stores them for one cell
Row = list[tuple[str, Colours]]  # a row of the figure: runs of text sharing colours


def figure_rows(figure) -> list[Row] | None:
    """The figure laid out as plotext's build() does, less its ANSI string: runs of cells
    sharing colours, top row first. None if this plotext keeps its matrix elsewhere."""
    try:
        figure._set_sizes()
        figure._build_matrix()
        matrix = figure.monitor.matrix
        markers, fgs = matrix.marker, matrix.fullground
        styles, bgs = matrix.style, matrix.background
    except AttributeError:
        return None
    rows = []
    for r in reversed(range(len(markers))):  # plotext's row 0 is the bottom one
        runs: Row = []
        text: list[str] = []
        last = None
        for marker, fg, style, bg in zip(markers[r], fgs[r], styles[r], bgs[r]):
            colours = (_key(fg), _key(style), _key(bg))
            if colours != last and text:
                runs.append((inert_cells("".join(text)), last))
                text = []
            last = colours
            text.append(marker)
        if text:
            runs.append((inert_cells("".join(text)), last))
        rows.append(runs)
    return rows


def _key(colour):
    return tuple(colour) if isinstance(colour, list) else colour  # rgb may come as a list


@lru_cache(maxsize=256)
def rich_style(colours: Colours) -> RichStyle:
    """The style Rich gives these colours when it parses plotext's ANSI for them."""
    fg, style, bg = colours
    ansi = plotext_utility.colors_to_ansi(fg, style, bg)
    text = next(iter(AnsiDecoder().decode(ansi + "x")), Text("x"))
    return RichStyle.combine(span.style for span in text.spans if span.start == 0)


class PlotVisual(Visual):
    """A figure's rows as a Visual: strips built once, on the widget's base style."""

    def __init__(self, rows: list[Row], width: int, base: Style) -> None:
        self.rows = rows
        self.width = width
        self._base = base
        self._strips = self._build(base)

    def _build(self, base: Style) -> list[Strip]:
        base_rich = base.rich_style
        styles: dict[Colours, RichStyle] = {}

        def style_of(colours: Colours) -> RichStyle:
            if colours not in styles:
                styles[colours] = base_rich + rich_style(colours)
            return styles[colours]

        strips = []
        for runs in self.rows:
            segments = [Segment(text, style_of(colours)) for text, colours in runs]
            strips.append(Strip(segments).crop_extend(0, self.width, base_rich))
        return strips

    @property
    def plain(self) -> str:
        """The figure's characters, each row ending in a newline, as the plain text of the ANSI
        path's Text was."""
        return "".join("".join(text for text, _ in runs) + "\n" for runs in self.rows)

    def render_strips(self, width: int, height: int | None, style: Style,
                      options: RenderOptions) -> list[Strip]:
        if style != self._base:
            self._base, self._strips = style, self._build(style)
        strips = self._strips
        if width != self.width:
            strips = [strip.crop_extend(0, width, style.rich_style) for strip in strips]
        if height is not None and len(strips) != height:
            blank = Strip.blank(width, style.rich_style)
            strips = (strips + [blank] * height)[:height]
        return strips

    def get_optimal_width(self, rules, container_width: int) -> int:
        return self.width

    def get_height(self, rules, width: int) -> int:
        return len(self.rows)


class MatrixPlot(PlotextPlot):
    """A PlotextPlot drawn from the figure's cell matrix (see the module): the same cells,
    about a third of the cost."""

    def render(self):
        plt = self.plt
        width, height = self.size
        plt.plotsize(width, height)
        plt._set_size(width, height)  # as PlotextPlot.render: plotsize alone does not resize
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        rows = figure_rows(plt)
        if rows is None:  # a plotext that keeps its matrix elsewhere: its own ANSI string
            return Text.from_ansi(plt.build())
        return PlotVisual(rows, width, self.visual_style)


class FigurePlot(MatrixPlot):
    """A MatrixPlot whose figure ``draw(plt, width, height)`` rebuilds on every render;
    ``redraws`` counts the renders (tests)."""

    def __init__(self, draw=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._draw = draw
        self.redraws = 0

    def render(self):
        plt = self.plt
        plt.clear_figure()
        if self._draw is not None:
            self._draw(plt, self.size.width, self.size.height)
        self.redraws += 1
        return super().render()
