"""Nothing in the app redraws on a timer what does not change on screen: each such wake-up of
the UI thread is time a training run on the same cores waits for the GIL (issue 19)."""

from __future__ import annotations

from textual.app import App

from pilot_helpers import SIZE, wait_for
from tui_nn.tui.app import make_app
from tui_nn.tui.widgets.run_status import SteadyProgressBar


async def test_the_zoo_spinner_is_gone_once_the_zoo_is_listed():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state != "loading", 30, "catalog")
        await pilot.pause()
        assert not main.query("#picker-loading")
        assert not main.query("LoadingIndicator")


async def test_the_run_status_bars_redraw_only_when_their_progress_changes():
    class Bars(App):
        def compose(self):
            yield SteadyProgressBar(total=10, show_eta=False)

    app = Bars()
    async with app.run_test() as pilot:
        bar = app.query_one(SteadyProgressBar)
        for progress in (1, 2, 3):  # samples over 1.2 s: an ETA exists and moves with time
            bar.update(progress=progress)
            await pilot.pause(0.6)
        eta = bar._display_eta
        redraws = []
        original = bar.refresh
        bar.refresh = lambda *a, **k: redraws.append(1) or original(*a, **k)
        await pilot.pause(1.3)  # Textual's once-a-second ETA timer fires
        assert redraws == [] and bar._display_eta == eta
        bar.update(progress=7)
        assert bar.progress == 7 and bar.percentage == 0.7 and redraws
