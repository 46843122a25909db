"""Snapshot tests of the app's main views (pytest-textual-snapshot).

Frames are deterministic: a fixed terminal size, no clock, and runs are replayed from fixed
engine events through the real bridge (tests/demo.py), so no throughput, ETA or date shows.
Update after an intended change with: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

from tui_nn.tui.app import make_app
from demo import SNAPSHOT_SIZE, replay, select_model, settle, synthetic_run


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


def _table_text(pilot) -> str:
    table = pilot.app.main.query_one("#layers")
    return "\n".join(table.render_line(y).text for y in range(table.size.height))


def test_inspector_at_80x24_keeps_every_number(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await select_model(pilot, "lenet")
        pilot.app.main.query_one("#zoo").focus()
        await pilot.pause()
        text = _table_text(pilot)  # issue 14: '= 2' for 28 and '= 1' for 14 at 80 columns
        for whole in ("⌊(32+0−4−1)/1⌋+1 = 28 ", "⌊(28+0−1−1)/2⌋+1 = 14 ", "16×5×5 = 400 ✓",
                      " 156", " 2,416", " 48,120", " 61,706"):
            assert whole in text, whole
        # The training-memory line wraps rather than cutting its last figure (issue 31.1).
        line = pilot.app.main.query_one("#memory-line")
        shown = "\n".join(line.render_line(y).text for y in range(line.size.height))
        assert "momentum state 241.0 KiB" in " ".join(shown.split()) and "…" not in shown

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_inspector_at_120x36_keeps_every_number(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await select_model(pilot, "lenet", input_text="1x28x28")
        pilot.app.main.query_one("#zoo").focus()
        await pilot.pause()
        text = _table_text(pilot)  # issue 14: params read '51,90', '15', '2,41' at 120 columns
        for whole in ("H,W: ⌊(28+0−4−1)/1⌋+1 = 24 ", " 156 ", " 2,416 ", " 48,120 ", " 61,706 ",
                      "Linear(400) ← 16 × 4 × 4 = 256 ✗ expects 400"):
            assert whole in text, whole

    assert snap_compare(make_app(), terminal_size=(120, 36), run_before=run_before)


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
