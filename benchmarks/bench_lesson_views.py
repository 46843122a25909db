"""Cost of one redraw of each lesson view (activation functions, loss landscape, sequence
models, autograd graph), in the headless app, CPU.

    python benchmarks/bench_lesson_views.py [--repeat 30] [--size 100x30]

For each view two figures, median of --repeat after one warm-up:
- widget: rebuilding the view's main widget (the plotext figure, the heat map, the tree's
  visible lines): what one animation frame or one key press costs on top of Textual's own work;
- frame: the change that triggers a redraw (next epoch, a key's action) followed by rendering
  the whole screen with Textual's compositor (unchanged widgets from their caches): an upper
  bound of the price of one refresh.
The landscape view animates at one frame per TICK_S (0.12 s); the others redraw only on a key
press or when a worker's message arrives (once per epoch of the char RNN, once per finished
long-range run), so their cost per second is their cost per refresh times a few.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the app drivers
sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_ms  # noqa: E402



def rebuild(widget):
    """Rebuild a widget's lines from scratch: refresh() drops its cached visual (otherwise
    _render_content would only re-cut the cached one into lines)."""
    def run() -> None:
        widget.refresh()
        widget._render_content()
    return run


def frame(screen, change) -> None:
    """Apply a change (it refreshes the widgets it touches) and render the whole screen: the
    changed widgets rebuild, the others come from their caches. An upper bound of Textual's
    partial update, which renders only the changed regions."""
    change()
    screen._compositor.render_full_update()


async def measure(size: tuple[int, int], repeat: int) -> list[tuple[str, float, float]]:
    from textual.geometry import Region

    from tui_nn.tui.app import make_app
    from demo import select_model, settle
    from tui_nn.tui.screens.activations import ActivationsScreen
    from tui_nn.tui.screens.landscape import LandscapeScreen
    from tui_nn.tui.screens.lessons import open_lesson
    from tui_nn.tui.screens.sequences import SequenceScreen

    rows: list[tuple[str, float, float]] = []
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)

        async def until(predicate) -> None:
            while not predicate():
                await pilot.pause(0.05)

        # Activation functions: a key press rebuilds the figure (7 curves × ~200 points).
        screen = ActivationsScreen()
        app.push_screen(screen)
        await until(lambda: len(screen.curves) == 7)
        await pilot.pause(0.2)
        plot = screen.query_one("#act-plot")

        def toggle_tanh() -> None:  # the key '2': the table and the plot redraw
            screen.action_toggle(1)
        rows.append(("activations, f (7 curves)", median_ms(rebuild(plot), repeat),
                     median_ms(lambda: frame(screen, toggle_tanh), repeat)))
        screen.mode = "both"
        await pilot.pause(0.1)
        rows.append(("activations, f and f' (14 curves)",
                     median_ms(rebuild(plot), repeat),
                     median_ms(lambda: frame(screen, toggle_tanh), repeat)))
        app.pop_screen()
        await pilot.pause(0.1)

        # Loss landscape: one animation frame = the next epoch on every path.
        for view in ("curve", "heat"):
            screen = LandscapeScreen(autoplay=False, view=view)
            app.push_screen(screen)
            await pilot.pause(0.2)
            widget = screen.query_one("#land-heat" if view == "heat" else "#land-plot")
            ticks = iter(range(10**9))

            def next_epoch(screen=screen, ticks=ticks) -> None:
                screen.t = next(ticks) % (screen.epochs + 1)
            label = "landscape, MSE(w) + 3 paths" if view == "curve" else \
                "landscape, w×b heat map + 3 paths"
            screen.t = 100  # the longest paths: the most points to draw
            again = widget.build if view == "heat" else rebuild(widget)
            rows.append((label, median_ms(again, repeat),
                         median_ms(lambda: frame(screen, next_epoch), repeat)))
            app.pop_screen()
            await pilot.pause(0.1)

        # Sequence models: redraw after an epoch of the char RNN (15 rows, gradients drawn).
        screen = SequenceScreen()
        app.push_screen(screen)
        await until(lambda: not screen.char_running and screen.char_rows
                    and screen.grads is not None)
        await pilot.pause(0.2)
        table = screen.query_one("#char-table")
        w, h = table.size

        def table_lines() -> None:
            table._clear_caches()
            table.refresh()  # and the styles cache, which keeps rendered lines too
            table.render_lines(Region(0, 0, w, h))
        rows.append(("sequences, char RNN table (15 rows)", median_ms(table_lines, repeat),
                     median_ms(lambda: frame(screen, screen._show_grads), repeat)))
        app.pop_screen()
        await pilot.pause(0.1)

        # Autograd graph of the basic CNN (17 nodes) and the char RNN.
        for model in ("cnn", "rnn-seq"):
            await select_model(pilot, model)
            open_lesson(app, "autograd")
            await pilot.pause(0.1)
            screen = app.screen
            await until(lambda: screen.graph is not None)
            await pilot.pause(0.2)
            tree = screen.query_one("#ag-tree")
            w, h = tree.size

            def tree_lines(tree=tree, w=w, h=h) -> None:
                tree._clear_line_cache()
                tree.refresh()
                tree.render_lines(Region(0, 0, w, h))

            def toggle(tree=tree) -> None:
                tree.root.children[0].toggle()
            n = screen.graph.nodes
            rows.append((f"autograd tree, {model} ({n} nodes)", median_ms(tree_lines, repeat),
                         median_ms(lambda: frame(screen, toggle), repeat)))
            app.pop_screen()
            await pilot.pause(0.1)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--size", default="100x30")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    rows = asyncio.run(measure((w, h), args.repeat))
    name_w = max(len(r[0]) for r in rows)
    print(f"terminal {w}x{h}, median of {args.repeat}; widget = the view's main widget "
          f"rebuilt, frame = the change + the whole screen rendered")
    print(f"{'view':<{name_w}}  {'widget':>9}  {'frame':>9}")
    for name, widget_ms, frame_ms in rows:
        print(f"{name:<{name_w}}  {widget_ms:7.2f} ms  {frame_ms:7.2f} ms")


if __name__ == "__main__":
    main()
