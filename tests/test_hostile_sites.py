"""Hostile text reaches each view made inert once, upstream (where it is decoded) or by the one
sink that prints it, not by a clean at every place that shows it (issue 27)."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
import torch.nn as nn

from hostile import good_run, inert

# A terminal retitle, a lone C1 CSI, a bidi override, a newline and a 100k-character word.
EVIL = "\x1b]0;pwn\x07\x9b31m\u202e" + "w" * 100_000 + "\nsecond"
NAME = "n\x1b]0;pwn\x07\x9b\u202e"  # a module name or class name: any string is allowed


class _Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError(EVIL)


_Boom.__name__ = _Boom.__qualname__ = f"Boom{NAME}"


class _Mismatch(nn.Module):
    """A Linear fed by a flatten with the wrong in_features."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module(f"conv{NAME}", nn.Conv2d(1, 2, 3))
        self.add_module(f"fc{NAME}", nn.Linear(10, 3))

    def forward(self, x):
        x = self.get_submodule(f"conv{NAME}")(x).flatten(1)
        return self.get_submodule(f"fc{NAME}")(x)


class _Failing(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.add_module(f"b{NAME}", _Boom())

    def forward(self, x):
        return self.get_submodule(f"b{NAME}")(x)


class _Unused(nn.Module):
    """A module never called: said in a note."""

    def __init__(self) -> None:
        super().__init__()
        self.add_module(f"fc{NAME}", nn.Linear(4, 3))
        self.add_module(f"unused{NAME}", nn.ReLU())

    def forward(self, x):
        return self.get_submodule(f"fc{NAME}")(x)


def shown_inert(text: str) -> bool:
    """Nothing a terminal acts on, no 100k-character line, the newline not taken."""
    lines = text.splitlines()
    return (inert(text) and max(map(len, lines), default=0) < 10_000
            and not any(line.lstrip().startswith("second") for line in lines))


@pytest.fixture(scope="module")
def inspections():
    from tui_nn.shapes.api import inspect_model

    mismatch, failing = inspect_model(_Mismatch(), "1x8x8"), inspect_model(_Failing(), "4")
    unused = inspect_model(_Unused(), "4")
    assert mismatch.checks and not mismatch.checks[0].ok and "unused" in unused.notes[0]
    assert failing.diagnosis is not None and "\\x9b31m\\u202ewww" in failing.diagnosis.error
    return mismatch, failing, unused


def test_an_inspections_checks_diagnosis_and_notes_are_inert_in_every_cli_view(inspections):
    # The renderers print the records as they are: every text in them is inert from
    # shapes.records (the JSON view held the exception's \x9b and \u202e raw before).
    from rich.console import Console

    from tui_nn.commands.inspect_render import render_json, render_plain, render_rich

    for inspection in inspections:
        buf = io.StringIO()
        render_rich(inspection, Console(file=buf, force_terminal=True, width=200))
        json_text = render_json(inspection)
        for text in (render_plain(inspection), json_text):
            assert shown_inert(text), text[:300]
        # rich's own styles are ESC sequences: none but those (no OSC title, no C1, no bidi).
        assert "\x1b]0;" not in buf.getvalue() and shown_inert(buf.getvalue().replace("\x1b[", ""))


def test_a_diff_of_hostile_models_is_inert_in_every_cli_view(inspections):
    from rich.console import Console

    from tui_nn.commands.inspect_diff_render import (render_diff_json, render_diff_plain,
                                                     render_diff_rich)
    from tui_nn.shapes.diff import diff_inspections

    mismatch, failing, unused = inspections
    for diff in (diff_inspections(mismatch, unused), diff_inspections(failing, unused)):
        buf = io.StringIO()
        render_diff_rich(diff, Console(file=buf, force_terminal=True, width=200))
        shown = buf.getvalue()
        assert "\x1b]0;" not in shown and shown_inert(shown.replace("\x1b[", ""))
        plain = render_diff_plain(diff)
        assert shown_inert(plain) and "B: " in plain  # the note
        assert shown_inert(render_diff_json(diff))


def test_the_model_diff_screen_shows_hostile_sources_and_paths_inert(inspections):
    from textual.app import App

    from tui_nn.tui.catalog import ModelEntry
    from tui_nn.tui.screens.model_diff import ModelDiffScreen, Side, summary_lines

    def side(source: str, model: nn.Module, input_text: str) -> Side:
        shown = ModelEntry(source, "", input_text, None, in_zoo=False).shown_source
        return Side(source, model, input_text, shown)

    screen = ModelDiffScreen(side(f"a{EVIL}.py:Net", _Mismatch(), "1x8x8"),
                             side(f"b{EVIL}.py:Net", _Mismatch(), "1x9x9"))

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(screen)

    async def scenario():
        app = Host()
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(200):
                await pilot.pause(0.05)
                if screen.query_one("#diff-rows").row_count:
                    break
            title = str(screen.query_one("#diff-title").render())
            summary = str(screen.query_one("#diff-summary").render())
            assert "a\\x1b]0;pwn\\x07\\x9b31m\\u202ewww" in title and shown_inert(title)
            assert "Linear input: fc" in summary and shown_inert(summary)
            assert inert(app.export_screenshot())

    asyncio.run(scenario())
    from tui_nn.shapes.diff import diff_inspections

    mismatch, _, unused = inspections
    assert all(shown_inert(line) for line in summary_lines(diff_inspections(mismatch, unused)))


def test_serve_says_hostile_args_and_host_through_the_one_printer():
    # The usage error quotes ARGS, the warning and the bind error the host: textsafe.error and
    # say make them inert (serve printed the host raw before).
    from typer.testing import CliRunner

    from tui_nn.cli import app as cli_app

    refused = CliRunner().invoke(cli_app, ["serve", "--", f"train{EVIL}"])
    assert refused.exit_code == 2 and refused.output.count("error: ") == 1
    assert "`'train\\x1b]0;pwn\\x07\\x9b31m\\u202ewww" in refused.output
    assert inert(refused.output) and "Traceback" not in refused.output
    for host in (f"h{NAME}.invalid", "w" * 100_000):  # the resolver raised UnicodeError
        bad = CliRunner().invoke(cli_app, ["serve", "--host", host])
        assert bad.exit_code == 2 and bad.output.count("error: ") == 1, bad.output[:300]
        assert inert(bad.output) and len(bad.output) < 2100


def test_a_hostile_host_never_becomes_a_target_nor_reaches_an_ssh_message(tmp_path,
                                                                          monkeypatch):
    from typer.testing import CliRunner

    from tui_nn.cli import app as cli_app
    from tui_nn.runs import ssh
    from tui_nn.runs.remote import split_target

    assert split_target(f"h{NAME}:run") is None and split_target(f"{'w' * 100_000}:r") is None
    with pytest.raises(ssh.SshError) as raised:
        ssh.host(f"h{EVIL}")
    assert inert(str(raised.value)) and "www" not in str(raised.value)
    monkeypatch.chdir(tmp_path)  # so it is a local path, and there is no such run
    watched = CliRunner().invoke(cli_app, ["watch", f"h{NAME}:run"])
    assert watched.exit_code == 2 and inert(watched.output), watched.output


def test_a_hostile_device_typed_is_shown_inert_before_a_run():
    # The reason a --device cannot be used quotes it: device_line takes the reason's first
    # line through textsafe.first_line, and RunStatus shows the line as it is.
    from textual.app import App, ComposeResult

    from tui_nn.tui.catalog import device_line
    from tui_nn.tui.widgets.run_status import RunStatus

    line = device_line(f"cuda{EVIL}")
    assert line.startswith("? (") and shown_inert(line) and "\\x9b31m" in line
    assert device_line("cpu").startswith("CPU")

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield RunStatus()

    async def scenario():
        app = Host()
        async with app.run_test(size=(100, 20)) as pilot:
            app.query_one(RunStatus).device = line
            await pilot.pause(0.1)
            head = str(app.query_one("#status-head").render())
            assert " on ? (unknown device 'cuda\\x1b]0;" in head and shown_inert(head)
            assert inert(app.export_screenshot())

    asyncio.run(scenario())


def test_the_runs_screen_and_resume_dialog_show_hostile_roots_typed_inert(tmp_path,
                                                                          monkeypatch):
    # A root typed is shown as `tui-nn runs` shows it: decoded once (runs.remote.Target).
    from textual.app import App
    from textual.widgets import OptionList

    from tui_nn.tui.screens.resume import ResumeScreen
    from tui_nn.tui.screens.runs import RunsScreen
    from tui_nn.tui.viewer_app import ViewerApp

    monkeypatch.chdir(tmp_path)
    root = Path(f"r{NAME}\nx")  # relative, as typed
    good_run(root / "run1")
    long = f"{EVIL}/nowhere"
    cases = [([str(root)], "1 runs under"), ([long], "no runs under \\x1b]0;pwn")]

    async def runs_screen(roots: list[str], said: str) -> None:
        app = ViewerApp(RunsScreen(roots))
        async with app.run_test(size=(110, 30)) as pilot:
            await pilot.pause(0.05)
            for _ in range(100):
                if app.screen.loaded:
                    break
                await pilot.pause(0.05)
            caption = str(app.screen.query_one("#runs-caption").render())
            assert said in caption and shown_inert(caption) and shown_inert(app.screen.sub_title)
            assert "\\x1b]0;pwn" in app.screen.sub_title
            assert inert(app.export_screenshot())

    class ResumeApp(App[None]):
        def __init__(self, folder: str) -> None:
            super().__init__()
            self.folder = folder

        def on_mount(self) -> None:
            self.push_screen(ResumeScreen(self.folder))

    async def resume(folder: str) -> None:
        app = ResumeApp(folder)
        async with app.run_test(size=(110, 30)) as pilot:
            await wait(pilot, lambda: isinstance(app.screen, ResumeScreen)
                       and not app.screen.query_one(OptionList).loading)
            title = str(app.screen.query_one("#resume-title").render())
            assert "from " in title and "\\x1b]0;pwn" in title and shown_inert(title)
            assert inert(app.export_screenshot())

    for roots, said in cases:
        asyncio.run(runs_screen(roots, said))
    for folder in (str(root), long):
        asyncio.run(resume(folder))


async def wait(pilot, predicate, tries: int = 200) -> None:
    for _ in range(tries):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out")


def test_the_stop_question_of_watch_shows_a_hostile_run_name_as_data(tmp_path):
    # The question is markup: the name went in raw before ("[b]" styled it, ESC reached it).
    from tui_nn.tui.screens.confirm import ConfirmScreen
    from tui_nn.tui.screens.watch import WatchApp

    run = good_run(tmp_path / f"[b]x{NAME}[")

    async def scenario():
        app = WatchApp(run, poll_s=0.05)
        async with app.run_test(size=(110, 30)) as pilot:
            await wait(pilot, lambda: app.screen.status != "loading")
            # The header shows the title inert (the app's format_title), as every screen's.
            header = str(app.screen.query_one("HeaderTitle").render())
            assert "[b]xn\\x1b]0;pwn\\x07\\x9b\\u202e[" in header and shown_inert(header)
            app.screen.action_stop_run()
            await wait(pilot, lambda: isinstance(app.screen, ConfirmScreen)
                       and bool(app.screen.query("#question")))
            question = str(app.screen.query_one("#question").render())
            assert "Stop the run [b]xn\\x1b]0;pwn" in question and shown_inert(question)
            assert inert(app.export_screenshot()) and app.is_running

    asyncio.run(scenario())


def test_every_screen_title_goes_through_the_apps_one_inert_hook():
    # Textual shows a title as it is (an ESC reaches the terminal): the main screen's holds
    # the model's source as typed, watch's a run's folder name.
    from textual.app import App, ComposeResult
    from textual.widgets import Header

    from tui_nn.tui.app import TuiNNApp
    from tui_nn.tui.viewer_app import InertText, ViewerApp

    assert all(issubclass(cls, InertText) for cls in (TuiNNApp, ViewerApp))

    class Host(InertText, App[None]):
        def compose(self) -> ComposeResult:
            yield Header()

        def on_mount(self) -> None:
            self.screen.title, self.screen.sub_title = f"t{NAME}", f"{EVIL}.py:Net · ready"

    async def scenario():
        app = Host()
        async with app.run_test(size=(100, 5)) as pilot:
            await pilot.pause(0.1)
            header = str(app.query_one("HeaderTitle").render())
            assert header.startswith("tn\\x1b]0;pwn\\x07\\x9b\\u202e — \\x1b]0;pwn")
            assert shown_inert(header) and inert(app.export_screenshot())

    asyncio.run(scenario())
