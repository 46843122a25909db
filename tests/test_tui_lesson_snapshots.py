"""Snapshot tests of the lesson views (pytest-textual-snapshot), one per view at 100×30 and
the landscape's heat map at 80×24. Deterministic: the landscape is paused at fixed epochs,
the char RNN and the gradients use seed 0 on one thread, the long-range table is not started.
Update after an intended change with:
pytest tests/test_tui_lesson_snapshots.py --snapshot-update
"""

from __future__ import annotations

import time

from tui_nn.tui.app import make_app
from demo import SNAPSHOT_SIZE, select_model, settle


async def _until(pilot, predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the view did not finish")
        await pilot.pause(0.05)


def test_activation_functions_view(snap_compare):
    from tui_nn.tui.screens.activations import ActivationsScreen

    async def run_before(pilot):
        await settle(pilot)
        screen = ActivationsScreen()
        pilot.app.push_screen(screen)
        await _until(pilot, lambda: len(screen.curves) == 7)
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_loss_landscape_view(snap_compare):
    from tui_nn.tui.screens.landscape import LandscapeScreen

    async def run_before(pilot):
        await settle(pilot)
        screen = LandscapeScreen(autoplay=False)
        pilot.app.push_screen(screen)
        await pilot.pause(0.1)
        screen.t = 12  # mid-way: GD still on its way down, SGD nearly there
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_loss_landscape_heat_map_at_80x24(snap_compare):
    from tui_nn.tui.screens.landscape import LandscapeScreen

    async def run_before(pilot):
        await settle(pilot)
        screen = LandscapeScreen(autoplay=False, view="heat")
        pilot.app.push_screen(screen)
        await pilot.pause(0.1)
        screen.t = 100
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_sequence_models_view(snap_compare):
    from tui_nn.tui.screens.sequences import SequenceScreen

    async def run_before(pilot):
        await settle(pilot)
        screen = SequenceScreen()
        pilot.app.push_screen(screen)
        await _until(pilot, lambda: not screen.char_running and screen.char_rows
                     and screen.grads is not None)
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_autograd_graph_view(snap_compare):
    from tui_nn.tui.screens.lessons import open_lesson

    async def run_before(pilot):
        await settle(pilot)
        await select_model(pilot, "cnn")
        open_lesson(pilot.app, "autograd")
        await pilot.pause(0.1)
        screen = pilot.app.screen
        await _until(pilot, lambda: screen.graph is not None)
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_augmentation_view(snap_compare):
    from tui_nn.tui.screens.augment_view import AugmentScreen

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.push_screen(AugmentScreen())
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_augmentation_view_at_80x24(snap_compare):
    from tui_nn.tui.screens.augment_view import AugmentScreen

    async def run_before(pilot):
        await settle(pilot)
        pilot.app.push_screen(AugmentScreen())
        await pilot.pause(0.1)
        await pilot.press("p")  # the photos preset: flips and colour changes
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_overfitting_view(snap_compare):
    from tui_nn.tui.screens.overfit import OverfitScreen

    async def run_before(pilot):
        await settle(pilot)
        # Small enough for a test (96 digits, 10 epochs); the view's default is 256 × 30.
        screen = OverfitScreen(options={"n_train": 96, "n_val": 200, "epochs": 10,
                                        "batch_size": 8})
        pilot.app.push_screen(screen)
        await _until(pilot, lambda: screen.done, timeout=120)
        screen.query_one("#of-status").update("trained (the time is left out of the snapshot)")
        await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)
