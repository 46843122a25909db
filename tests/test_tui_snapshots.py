"""Snapshot tests of the app's main views (pytest-textual-snapshot).

Frames are deterministic: a fixed terminal size, no clock, and runs are replayed from fixed
engine events through the real bridge (tui_nn.tui.demo), so no throughput, ETA or date shows.
Update after an intended change with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

from tui_nn.tui.app import make_app
from tui_nn.tui.demo import SNAPSHOT_SIZE, replay, select_model, settle, synthetic_run


def test_model_picker_with_inspector(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await select_model(pilot, "cnn")
        pilot.app.main.query_one("#zoo").focus()

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_shape_mismatch_diagnosis(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await select_model(pilot, "lenet", input_text="1x28x28")
        pilot.app.main.query_one("#zoo").focus()

    assert snap_compare(make_app(), terminal_size=SNAPSHOT_SIZE, run_before=run_before)


def test_training_with_live_curves(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.main.show_tab("train")
        await replay(pilot, synthetic_run(upto_step=420))

    assert snap_compare(make_app(model="cnn"), terminal_size=SNAPSHOT_SIZE,
                        run_before=run_before)


def test_finished_run_at_80x24(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.main.show_tab("train")
        await replay(pilot, synthetic_run())
        pilot.app.clear_notifications()

    assert snap_compare(make_app(model="cnn"), terminal_size=(80, 24), run_before=run_before)


def test_wide_and_tall_terminal(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.main.show_tab("train")
        await replay(pilot, synthetic_run(upto_step=300))

    assert snap_compare(make_app(model="cnn"), terminal_size=(160, 44), run_before=run_before)
