"""What one redraw of the live curves costs the UI thread: textual-plotext's path (plotext's
ANSI string, parsed back by Rich, converted to Textual Content, then to strips) against the
figure's cell matrix drawn straight into strips (tui_nn.tui.widgets.plot_visual).

    python benchmarks/bench_plot_render.py [--size 120x36] [--rounds 31]

Both paths redraw the same figure (the loss plot: raw and smoothed train loss, validation
loss; the metric plot: accuracy per epoch) in alternating rounds, each measured in the UI
thread's CPU time (time.thread_time) from the widget's render() to its strips; printed: the
median of each and matrix / ANSI.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import time

from rich.text import Text
from textual.app import App
from textual.visual import Visual, visualize

from tui_nn.tui.history import RunHistory
from tui_nn.tui.widgets.curves import Curves, LossPlot, MetricPlot


def history(epochs: int = 12, steps: int = 256) -> RunHistory:
    rng = random.Random(0)
    h = RunHistory()
    h.reset("accuracy")
    for k in range(epochs):
        start = k * steps
        h.add_steps(start + 1, [2.0 * math.exp(-(start + i) / 500) + 0.1 * rng.random()
                                for i in range(steps)])
        h.add_epoch(k, start + steps, 0.3 - 0.01 * k, 0.2, 0.90 + 0.005 * k)
    return h


def matrix_path(plot) -> list:
    return Visual.to_strips(plot, plot.render(), *plot.size, plot.visual_style)


def ansi_path(plot) -> list:
    plot.render()  # the same figure set-up (data, ticks, size, theme)
    visual = visualize(plot, Text.from_ansi(plot.plt.build()))
    return Visual.to_strips(plot, visual, *plot.size, plot.visual_style)


def cpu_ms(fn, plot) -> float:
    t0 = time.thread_time()
    fn(plot)
    return (time.thread_time() - t0) * 1000


async def measure(size: tuple[int, int], rounds: int) -> None:
    class Plots(App):
        def compose(self):
            yield Curves(history())

    app = Plots()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        for cls in (LossPlot, MetricPlot):
            plot = app.query_one(cls)
            times: dict[str, list[float]] = {"ansi": [], "matrix": []}
            for _ in range(rounds):
                for name, fn in (("ansi", ansi_path), ("matrix", matrix_path)):
                    times[name].append(cpu_ms(fn, plot))
            ansi, matrix = (statistics.median(times[k]) for k in ("ansi", "matrix"))
            width, height = plot.size
            print(f"{cls.__name__} {width}x{height}: ANSI path {ansi:.2f} ms, matrix path "
                  f"{matrix:.2f} ms per redraw (median of {rounds}); matrix / ANSI "
                  f"{matrix / ansi:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="120x36", help="terminal COLSxROWS")
    p.add_argument("--rounds", type=int, default=31)
    args = p.parse_args()
    cols, rows = (int(v) for v in args.size.lower().split("x"))
    asyncio.run(measure((cols, rows), args.rounds))


if __name__ == "__main__":
    main()
