"""Hints that go the whole way (issue 31.8): after a NaN/inf the "continue with" command halves
the lr, and quitting the app mid-run prints the command that continues the run, as a headless
run does."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from tui_nn.cli import app as cli
from tui_nn.tui.app import make_app

from helpers import line_dataset
from pilot_helpers import SIZE, press_to_exit, wait_for


def _continue_line(text: str) -> str:
    (line,) = [x for x in text.splitlines() if x.startswith("continue with:")]
    return line


def test_nan_hint_resumes_with_half_the_lr_and_that_command_halves_it(tmp_path):
    run = tmp_path / "nan"
    result = CliRunner().invoke(cli, ["train", "linear", "--lr", "10", "--epochs", "200",
                                      "--run-dir", str(run), "--headless"])
    assert result.exit_code == 1
    assert "--lr 5 halves it" in result.output
    line = _continue_line(result.output)
    assert line == f"continue with: tui-nn train --resume {run} --headless --lr 5"
    # The hint's own command: resume reads --lr as the run's new lr (10 → 5) and halves the
    # checkpoint's lr with it; it blows up later, and then suggests 2.5.
    again = CliRunner().invoke(cli, line.removeprefix("continue with: tui-nn ").split())
    assert "lr 10.0 → 5.0" in again.output
    assert _continue_line(again.output).endswith("--headless --lr 2.5")


def test_a_stop_that_is_not_a_nan_resumes_without_changing_the_lr(tmp_path):
    from tui_nn.commands.train_cmd import _print_resume_hint
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        _print_resume_hint(str(tmp_path))
    assert "--lr" not in err.getvalue()


async def _quit_mid_run(tmp_path, lr: float | None, until) -> str:
    options = {"epochs": 1_000_000, "runs_root": str(tmp_path)}
    if lr is not None:
        options["lr"] = lr
    app = make_app(model="linear", train_options=options, dataset=line_dataset())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.main.run_state == "idle", what="catalog")
        await pilot.press("s")
        await wait_for(pilot, lambda: until(app.main), what="run under way")
        await pilot.press("q")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ConfirmScreen",
                       what="confirm")
        await press_to_exit(pilot, "y")
    return app.exit_text


async def test_quitting_mid_run_prints_the_command_that_continues_it(tmp_path):
    text = await _quit_mid_run(tmp_path, None,
                               lambda main: main.run_state == "running" and main.bridge.latest)
    (run_dir,) = tmp_path.iterdir()
    assert f"checkpoint saved to {run_dir / 'last.pt'}" in text
    assert _continue_line(text) == f"continue with: tui-nn train --resume {run_dir}"


async def test_quitting_a_run_paused_on_nan_suggests_half_the_lr(tmp_path):
    text = await _quit_mid_run(tmp_path, 10.0, lambda main: main.run_state == "paused")
    (run_dir,) = tmp_path.iterdir()
    assert re.fullmatch(rf"continue with: tui-nn train --resume {run_dir} --lr 5",
                        _continue_line(text))
