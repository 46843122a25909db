"""The app's shape inspector (issue 14): numbers are never cut, the less important columns give
way first, a user model without a declared input is inspected at the input its first layer
asks for, `tui-nn tui --input` fills the field, and the Train tab's log keeps every character
clear of its scrollbar."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from tui_nn.cli import app as cli_app
from tui_nn.tui.app import make_app
from demo import select_model, settle
from tui_nn.tui.widgets.inspector_table import arithmetic_text, check_text, count_text
from pilot_helpers import wait_for


def table_lines(inspector) -> list[str]:
    """The layer table as drawn at its width: what a cut column or a pane edge would hide is not
    here. Every row, those below the pane too (scrolling down reaches them; a wrapped memory
    line under the table may leave a row less on screen)."""
    table = inspector.query_one("#layers")
    x = table.scroll_offset.x
    return [table._render_line(y, x, x + table.size.width, table.rich_style).text
            for y in range(max(table.virtual_size.height, table.size.height))]


def assert_every_number_whole(inspector) -> None:
    """Each row's line holds its output shape, its params and the result of its arithmetic
    in full ('= 28', not '= 2'); nothing needs sideways scrolling to be seen."""
    table = inspector.query_one("#layers")
    assert table.virtual_size.width <= table.scrollable_content_region.width
    lines = table_lines(inspector)
    insp = inspector.inspection
    rows = [r for r in insp.all_rows if r.depth <= inspector.depth]
    checks = {c.path: c for c in insp.checks}
    for i, row in enumerate(rows):
        line = lines[i + 1]  # under the header
        if row.status != "error" and row.output_shapes:
            assert "×".join(map(str, row.output_shapes[0])) in line, (row.path, line)
        if row.params:
            assert re.search(rf"(^|\s){re.escape(count_text(row.params))}(\s|$)", line), line
        for f in row.arithmetic:
            assert re.search(rf"= {f.value}(\s|$)", line), (row.path, line)
        check = checks.get(row.path) if row.kind == "module" else None
        if check is not None:
            assert re.search(rf"= {check.got}(\s|$)", line), line


@pytest.mark.parametrize("size", [(80, 24), (120, 36)])
@pytest.mark.parametrize("model, input_text", [("lenet", None), ("lenet", "1x28x28"),
                                               ("resnet", None), ("inception", None)])
async def test_the_table_never_cuts_a_number(size, model, input_text):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await select_model(pilot, model, input_text=input_text)
        await pilot.pause()
        assert_every_number_whole(app.main.query_one("#inspector"))


async def test_80x24_keeps_the_conv_arithmetic_and_gives_up_the_type_column_first():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select_model(pilot, "lenet")
        await pilot.pause()
        inspector = app.main.query_one("#inspector")
        text = "\n".join(table_lines(inspector))
        assert "⌊(32+0−4−1)/1⌋+1 = 28" in text and "⌊(28+0−1−1)/2⌋+1 = 14" in text
        assert "16×5×5 = 400 ✓" in text and "48,120" in text and "2,416" in text
        labels = [str(c.label).strip() for c in inspector.query_one("#layers").columns.values()]
        assert "type" not in labels and "params" in labels


async def test_a_wide_terminal_shows_the_type_column_and_the_full_check():
    app = make_app()
    async with app.run_test(size=(160, 44)) as pilot:
        await settle(pilot)
        await select_model(pilot, "cnn")
        await pilot.pause()
        inspector = app.main.query_one("#inspector")
        text = "\n".join(table_lines(inspector))
        assert "Linear(320) ← 20 × 4 × 4 = 320 ✓" in text
        assert "H,W: ⌊(28+0−4−1)/1⌋+1 = 24" in text and "MaxPool2d" in text


async def test_resizing_refits_the_columns():
    app = make_app()
    async with app.run_test(size=(160, 44)) as pilot:
        await settle(pilot)
        await select_model(pilot, "lenet")
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert_every_number_whole(app.main.query_one("#inspector"))


def test_compact_texts_keep_every_number():
    from tui_nn.shapes import inspect_model

    result = inspect_model("lenet", "1x28x28")
    conv1 = next(r for r in result.all_rows if r.path == "conv1")
    assert arithmetic_text(conv1, compact=True) == "⌊(28+0−4−1)/1⌋+1 = 24"
    assert arithmetic_text(conv1, compact=False) == "H,W: ⌊(28+0−4−1)/1⌋+1 = 24"
    (check,) = result.checks
    assert check_text(check, compact=True) == "16×4×4 = 256 ≠ 400 ✗"


async def test_user_model_without_an_input_is_inspected_at_the_assumed_input(tmp_path):
    path = tmp_path / "mynet.py"
    path.write_text(
        "import torch.nn.functional as F\nfrom torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = nn.Conv2d(1, 20, 5)\n"
        "        self.fc = nn.Linear(20 * 12 * 12, 10)\n"
        "    def forward(self, x):\n"
        "        return self.fc(F.max_pool2d(self.conv(x), 2).flatten(1))\n")
    source = f"{path}:Net"
    app = make_app(model=source)
    async with app.run_test(size=(100, 30)) as pilot:
        inspector = app.main.query_one("#inspector")
        await wait_for(pilot, lambda: inspector.inspection is not None
                       and inspector.inspection.model_name == "Net", what="inspection")
        assert inspector.inspection.ok and inspector.inspection.input_shapes == [(1, 1, 28, 28)]
        assert inspector.query_one("#input-shape").placeholder == "1x28x28"
        assert "in 1×1×28×28 (assumed)" in str(inspector.query_one("#inspector-summary").render())
        diagnosis = str(inspector.query_one("#diagnosis").render())
        assert "assumed 1×28×28: first layer (Conv2d) takes 1 channel" in diagnosis
        assert "3x224x224" not in diagnosis


async def test_tui_input_option_fills_the_inspector():
    app = make_app(model="lenet", input_text="1x28x28")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        inspector = app.main.query_one("#inspector")
        await wait_for(pilot, lambda: inspector.inspection is not None
                       and inspector.inspection.input_shapes == [(1, 1, 28, 28)], what="1x28x28")
        assert inspector.input_text == "1x28x28" and not inspector.inspection.ok


def test_tui_rejects_a_bad_input_before_the_app_opens():
    result = CliRunner().invoke(cli_app, ["tui", "cnn", "--input", "28xx"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "28xx" in result.output
    assert "--input" in CliRunner().invoke(cli_app, ["tui", "--help"]).output


async def test_train_tab_log_lines_stay_clear_of_the_scrollbar():
    app = make_app(model="cnn")
    async with app.run_test(size=(100, 40)) as pilot:  # tall: the log shows on the Train tab
        await settle(pilot)
        app.main.show_tab("train")
        await pilot.pause()
        log = app.main.query_one("#mini-log")
        for i in range(30):  # more lines than the log is high: its scrollbar appears
            log.add(f"line {i:02d} " + " ".join(f"w{j:02d}" for j in range(40)))
        await pilot.pause(0.2)
        visible = log.scrollable_content_region.width
        assert log.max_scroll_y > 0
        assert all(strip.cell_length <= visible for strip in log.lines)


async def test_mark_a_model_pick_another_and_d_shows_the_diff():
    from tui_nn.tui.screens.model_diff import ModelDiffScreen

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await select_model(pilot, "cnn")
        app.main.query_one("#zoo").focus()
        await pilot.press("m")
        await select_model(pilot, "resnet")
        app.main.query_one("#zoo").focus()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelDiffScreen), what="diff")
        screen = app.screen
        await wait_for(pilot, lambda: screen.query_one("#diff-rows").row_count > 0,
                       what="diff rows")
        summary = str(screen.query_one("#diff-summary").render())
        assert "Linear input: fc  320 = 20×4×4 → 512 = 32×4×4" in summary
        assert "first output that differs: conv1" in summary
        table = screen.query_one("#diff-rows")
        marks = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert marks.count("+") == 6
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ModelDiffScreen),
                       what="close")


async def test_the_inspector_says_what_it_did_not_count():
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await select_model(pilot, "resnet")
        text = str(app.main.query_one("#diagnosis").render())
        assert "not counted: 8 elementwise, 2 pool ops" in text  # 6 relu + 2 residual adds


async def test_v_adds_the_saved_bytes_column_sorted_largest_first():
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await select_model(pilot, "resnet")
        inspector = app.main.query_one("#inspector")
        app.main.query_one("#zoo").focus()
        await pilot.press("v")
        await wait_for(pilot, lambda: inspector.inspection is not None
                       and inspector.inspection.memory is not None and not inspector.pending,
                       what="the training-memory inspection")
        await pilot.pause()
        lines = table_lines(inspector)
        assert "saved ▼" in lines[0]
        rows = inspector._rows()
        assert [r.saved_bytes for r in rows] == sorted((r.saved_bytes for r in rows),
                                                       reverse=True)
        assert inspector.inspection.memory.batch_size == 64  # the zoo resnet's batch
        assert rows[1].name in lines[2]  # the second largest is drawn second
        await pilot.press("v")
        await wait_for(pilot, lambda: inspector.inspection.memory is None
                       and not inspector.pending, what="back to forward order")
        await pilot.pause()
        assert "saved" not in table_lines(inspector)[0]
