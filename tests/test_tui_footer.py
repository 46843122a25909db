"""The main screen's footer is rebuilt when the keys it shows change, not on every focus move
(switching tabs moves focus: a rebuild per press cost the UI thread a fifth of its time)."""

from __future__ import annotations

from textual.widgets._footer import FooterKey

from tui_nn.tui.app import make_app
from tui_nn.tui.widgets.footer import SteadyFooter

from pilot_helpers import SIZE, wait_for


def shown(footer: SteadyFooter) -> dict[str, bool]:
    """Key -> enabled, as drawn."""
    return {k.key: not k.has_class("-disabled") for k in footer.query(FooterKey)}


async def test_tab_switches_keep_the_footer_and_state_changes_rebuild_it():
    app = make_app(model="cnn")
    async with app.run_test(size=SIZE) as pilot:
        main = app.main
        await wait_for(pilot, lambda: main.run_state == "idle" and main.model_source,
                       what="catalog")
        footer = main.query_one(SteadyFooter)
        await pilot.press("2")
        await pilot.pause(0.2)
        keys = list(footer.query(FooterKey))
        assert shown(footer)["2"] and shown(footer)["s"] and not shown(footer)["p"]
        for key in ("3", "2", "1", "2"):  # focus moves to each tab's main widget
            await pilot.press(key)
            await pilot.pause(0.1)
        assert list(footer.query(FooterKey)) == keys  # the same widgets: no rebuild
        main.run_state = "running"  # pause becomes possible, start does not
        await wait_for(pilot, lambda: shown(footer).get("p") is True, what="footer rebuilt")
        assert shown(footer)["s"] is False
        main.run_state = "idle"
        await wait_for(pilot, lambda: shown(footer).get("s") is True, what="footer rebuilt")
