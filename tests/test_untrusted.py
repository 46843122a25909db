"""Untrusted input is inert: strings from run directories, files and models never reach the
terminal raw, never act as markup, and never crash a command or a screen (issue 13)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import fastproc
import pytest
from hypothesis import given, settings

from hostile import (CLEAR, ESC_TITLE, HOSTILE, good_run, hostile_text, hostile_tree, inert,
                     record, started, wait_until)
from tui_nn.engine import jsonl
from tui_nn.runs import discover_runs, load_history
from tui_nn.runs.follow import MetricsFollower
from tui_nn.textsafe import MAX_CHARS, clean, clean_line

REPO = Path(__file__).resolve().parent.parent
SIZE = (110, 32)


def cli(*args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return fastproc.run(args, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


# ---- textsafe ---------------------------------------------------------------------------------
@given(hostile_text())
@settings(max_examples=300, deadline=None)
def test_clean_leaves_nothing_a_terminal_would_act_on(text):
    out = clean(text)
    assert inert(out)
    assert len(out) <= MAX_CHARS + 1
    assert "\n" not in clean_line(text) and "\t" not in clean_line(text)
    if inert(text) and len(text) <= MAX_CHARS:
        assert out == text  # honest text is shown as is


def test_clean_shows_what_it_removed():
    assert clean(f"a{ESC_TITLE}b") == "a\\x1b]0;pwned\\x07b"
    assert clean("\u202eevil") == "\\u202eevil"
    assert clean("x[/]") == "x[/]"  # markup is a renderer's business: Text shows it as is
    assert clean_line("a\nb\tc") == "a\\x0ab\\x09c"
    assert clean("w" * 10_000_000).endswith("…") and len(clean("w" * 10_000_000)) < 2100


# ---- bounded readers --------------------------------------------------------------------------
def test_jsonl_reader_skips_deep_long_and_bad_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"[" * 100_000 + b"\n" + b'{"a":' + b"[" * 100 + b"]" * 100 + b"}\n"
                     + b'"' + b"x" * (3 << 20) + b'"\n' + b"\xff\xfe\n" + b"[1]\n"
                     + b'{"ok":1}\n' + b'{"torn":')
    stats = jsonl.LineStats()
    assert list(jsonl.iter_records(path, stats)) == [{"ok": 1}]
    assert (stats.too_long, stats.undecodable, stats.torn) == (1, 4, True)


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_only_regular_files_are_opened(tmp_path, kind):
    path = tmp_path / "metrics.jsonl"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would wait for a writer forever
    elif kind == "symlink":
        os.symlink("/dev/zero", path)  # reading it would never end
    else:
        path.mkdir()
    stats = jsonl.LineStats()
    t0 = time.monotonic()
    assert list(jsonl.iter_records(path, stats)) == []
    assert time.monotonic() - t0 < 2 and stats.problem
    with pytest.raises(jsonl.BadJsonFile):
        jsonl.read_json_file(path)


def test_read_json_file_is_bounded(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"x": "a" * 100}))
    with pytest.raises(jsonl.BadJsonFile, match="larger than"):
        jsonl.read_json_file(path, cap=50)
    path.write_text("[" * 100_000)
    with pytest.raises(jsonl.BadJsonFile, match="not a JSON object"):
        jsonl.read_json_file(path)


def test_follower_drops_a_50mb_line_without_holding_it(tmp_path):
    run = good_run(tmp_path / "run")
    data = (run / "metrics.jsonl").read_bytes()
    (run / "metrics.jsonl").write_bytes(b'{"type":"x","y":"' + b"a" * (50 << 20) + b'"}\n'
                                        + data)
    follower = MetricsFollower(run)
    got, polls = [], 0
    t0 = time.monotonic()
    while True:
        got += follower.poll()
        polls += 1
        assert len(follower._pending) <= jsonl.MAX_LINE_BYTES
        if not follower.behind:
            break
    assert time.monotonic() - t0 < 10
    assert [r["type"] for r in got] == ["RunStarted", "EpochMetrics", "EpochMetrics",
                                        "Finished"]
    assert follower.skipped == 1


def test_history_and_runs_survive_every_hostile_kind(tmp_path):
    runs = hostile_tree(tmp_path)
    t0 = time.monotonic()
    infos = {r.path: r for r in discover_runs(tmp_path)}
    assert time.monotonic() - t0 < 10
    assert set(runs.values()) <= set(infos)
    good = infos[runs["good"]]
    assert (good.status, good.epochs_done, good.best_value) == ("stopped", 2, 0.6)
    assert infos[runs["deep"]].epochs_done == 2 and infos[runs["big"]].epochs_done == 2
    assert "not a regular file" in infos[runs["fifo"]].message
    assert "symlink" in infos[runs["symlink"]].message
    assert not infos[runs["symlink"]].has_checkpoint  # last.pt -> /etc/passwd
    assert infos[runs["types"]].epochs_done == 2
    for path in runs.values():
        load_history(path)  # never raises
    assert len(load_history(runs["types"]).epochs) == 2


# ---- tui-nn runs / inspect / the headless console ---------------------------------------------
def test_tui_nn_runs_on_a_hostile_tree_exits_0_quickly_and_lists_the_good_runs(tmp_path):
    hostile_tree(tmp_path)
    t0 = time.monotonic()
    result = cli("runs", "--root", str(tmp_path), timeout=60)
    elapsed = time.monotonic() - t0
    assert result.returncode == 0, result.stderr
    assert elapsed < 30  # a few seconds; most of it is starting Python on a busy box
    assert inert(result.stdout) and inert(result.stderr)
    out = result.stdout
    for name in ("good-run", "x[/]y", "deep-json", "big-line", "fifo-run", "symlink-run",
                 "wrong-types", "esc\\x1b]0;pwned\\x07"):
        assert name in out, name
    assert "failed (k\\x1b[2J)" in out
    as_json = cli("runs", "--root", str(tmp_path), "--json", timeout=60)
    assert as_json.returncode == 0 and len(json.loads(as_json.stdout)) == 8


def test_runs_table_for_a_terminal_is_the_same_inert_text(tmp_path):
    from tui_nn.commands.runs_cmd import run_runs

    hostile_tree(tmp_path, big_line=False)
    out = io.StringIO()
    assert run_runs(str(tmp_path), False, out) == 0
    assert inert(out.getvalue()) and "x[/]y" in out.getvalue()


HOSTILE_MODEL = textwrap.dedent('''
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.add_module("x[/]", nn.Linear(4, 3))
            self.add_module("[link=https://evil/x]click[/link]", nn.Linear(3, 2))
            self.add_module("t\\x1b]0;pwned\\x07", nn.ReLU())

        def forward(self, x):
            for m in self.children():
                x = m(x)
            return x
''')


def test_inspect_shows_hostile_layer_names_as_text(tmp_path):
    model = tmp_path / "net.py"
    model.write_text(HOSTILE_MODEL)
    result = cli("inspect", f"{model}:Net", "--input", "4", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and inert(result.stdout)
    assert "x[/]" in result.stdout and "[link=https://evil/x]click[/link]" in result.stdout

    from rich.console import Console

    from tui_nn.commands.inspect_render import render_rich
    from tui_nn.shapes.api import inspect_model
    from tui_nn.shapes.parse import parse_inputs

    buf = io.StringIO()
    inspection = inspect_model(f"{model}:Net", parse_inputs(["4"]))
    render_rich(inspection, Console(file=buf, force_terminal=True, width=200))
    shown = buf.getvalue()
    assert "\x1b]8;" not in shown  # no OSC 8 hyperlink
    assert "\x1b]0;" not in shown and "x[/]" in shown and "[link=https://evil/x]" in shown


def test_headless_console_lines_are_clean():
    from tui_nn.engine import events as ev
    from tui_nn.commands.console import PlainReporter

    out = io.StringIO()
    reporter = PlainReporter(out)
    reporter(ev.RunStarted(run_dir=f"runs/{CLEAR}", model=f"m{ESC_TITLE}", dataset="csv:[/]",
                           device="cpu", device_name="\x1b[31mCPU", task="regression",
                           metric="mse", n_train=1, n_val=1, epochs=1, batch_size=1,
                           steps_per_epoch=1, total_steps=1, parameters=1))
    reporter(ev.StateChanged(state=f"paused{CLEAR}"))
    assert inert(out.getvalue()) and "csv:[/]" in out.getvalue()


# ---- the app ----------------------------------------------------------------------------------
def _runs_app(root: Path):
    from textual.app import App

    from tui_nn.tui.screens.runs import RunsScreen

    class RunsApp(App):
        def on_mount(self):
            self.push_screen(RunsScreen(root))
    return RunsApp()


def test_runs_screen_and_watch_stay_up_on_a_hostile_tree(tmp_path):
    from tui_nn.tui.screens.runs import RunsScreen
    from tui_nn.tui.screens.watch import WatchScreen

    runs = hostile_tree(tmp_path)

    async def scenario():
        app = _runs_app(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen)
                             and app.screen.loaded, 20, "runs")
            screen = app.screen
            assert len(screen.runs) == 8
            for i in range(len(screen.runs)):  # every run highlighted, marked, then watched
                await pilot.press("space")
                await pilot.pause()
                run = screen.highlighted_row().run
                await pilot.press("w")
                await wait_until(pilot, lambda: isinstance(app.screen, WatchScreen), 5, "watch")
                await wait_until(pilot, lambda: app.screen.status != "loading", 10,
                                 f"watch of {run.name!r}")
                log = app.screen.query_one("#watch-log").lines_written
                assert all(inert(line) for line in log)
                await pilot.press("escape")
                await wait_until(pilot, lambda: app.screen is screen, 5, "back")
                await pilot.press("down")
            assert app.is_running and inert(app.export_screenshot())
            assert "x[/]y" in str(screen.query_one("#runs-table").get_row_at(
                [r.path for r in screen.runs].index(runs["markup"]))[1])

    asyncio.run(scenario())


def test_watch_of_hostile_records_shows_them_inert(tmp_path):
    from tui_nn.tui.screens.watch import WatchApp

    run = good_run(tmp_path / "r", final=dict(type="Failed", message=f"x{ESC_TITLE}{CLEAR}[/]",
                                              kind="nan", step=3))
    with open(run / "metrics.jsonl", "a") as f:
        f.write(record(**started(model=f"m{ESC_TITLE}[/]", dataset="[link=https://e]d[/link]",
                                 device_name="\x1b[2J[b]gpu")))
        f.write(record(type="StateChanged", state=f"paused{CLEAR}[/]"))

    async def scenario():
        app = WatchApp(run)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.watch_screen
            await wait_until(pilot, lambda: screen.records_seen >= 6, 10, "records")
            await pilot.pause(0.3)
            log = "\n".join(screen.query_one("#watch-log").lines_written)
            assert "x\\x1b]0;pwned\\x07\\x1b[2J[/]" in log
            assert "paused\\x1b[2J[/]" in log
            shot = app.export_screenshot()
            assert inert(shot) and "[link=https://e]d[/link]" in shot
            assert app.is_running

    asyncio.run(scenario())


def test_resume_dialog_lists_hostile_runs(tmp_path):
    from textual.app import App
    from textual.widgets import OptionList

    from tui_nn.tui.screens.resume import ResumeScreen

    runs = hostile_tree(tmp_path, big_line=False)

    class ResumeApp(App):
        def on_mount(self):
            self.push_screen(ResumeScreen(tmp_path))

    async def scenario():
        app = ResumeApp()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, ResumeScreen)
                             and not app.screen.query_one(OptionList).loading, 10, "runs")
            options = app.screen.query_one(OptionList)
            ids = {options.get_option_at_index(i).id for i in range(options.option_count)}
            assert {str(runs["escapes"]), str(runs["markup"])} <= ids
            await pilot.pause()
            shot = app.export_screenshot()
            assert inert(shot) and "x[/]y" in shot and app.is_running

    asyncio.run(scenario())


def test_app_notifications_and_event_log_are_inert():
    from tui_nn.tui.app import make_app

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            for text in HOSTILE:
                app.notify(text, title=text, markup=False)
                app.main._log(text, "error")
            await pilot.pause(0.2)
            assert all(inert(n.message) and inert(n.title) for n in app._notifications)
            lines = app.main.query_one("#event-log").lines_written
            assert len(lines) >= len(HOSTILE) and all(inert(line) for line in lines)
            assert inert(app.export_screenshot()) and app.is_running

    asyncio.run(scenario())


def test_record_schema_matches_the_engine_events():
    import dataclasses

    from tui_nn.engine import events as ev
    from tui_nn.engine.schema import SCHEMA

    for name, fields in SCHEMA.items():
        cls = getattr(ev, name)
        assert set(fields) == {f.name for f in dataclasses.fields(cls)}, name
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING
                    and "None" not in str(f.type)}
        assert {k for k, (_, req) in fields.items() if req} == required, name


def test_model_picker_and_inspector_show_a_hostile_model_inert(tmp_path):
    from tui_nn.tui.app import make_app

    model = tmp_path / "net[x].py"
    model.write_text('"""Doc with [link=https://evil/x]a link[/link] and \\x1b]0;pwned\\x07."""\n'
                     + HOSTILE_MODEL + "\n    def broken(self):\n        pass\n")
    source = f"{model}:Net"

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.main.run_state != "loading"
                             and app.main.model_source is not None, 120, "catalog")
            await pilot.press("o")
            app.focused.value = source
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.main.model_source == source, 60, "loaded")
            inspector = app.main.query_one("#inspector")
            inspector.input_text = "4"
            await wait_until(pilot, lambda: inspector.inspection is not None
                             and inspector.inspection.input_shapes == [(1, 4)], 60, "inspected")
            await pilot.pause(0.3)
            layers = inspector.query_one("#layers")
            names = [str(layers.get_row_at(i)[0]) for i in range(layers.row_count)]
            assert any("x[/]" in n for n in names)
            assert any("[link=https://evil/x]click[/link]" in n for n in names)
            assert any("t\\x1b]0;pwned\\x07" in n for n in names)
            layers.focus()
            for _ in range(layers.row_count):  # every layer's detail line
                await pilot.press("down")
            await pilot.pause(0.2)
            shot = app.export_screenshot()
            assert inert(shot) and "net[x].py" in shot
            # A source whose error message quotes hostile text: a notification, app stays up.
            app.main.query_one("#source").value = f"{tmp_path}/{CLEAR}[/]x.py:Net"
            app.main.query_one("#source").focus()
            await pilot.press("enter")
            await wait_until(pilot, lambda: any(n.severity == "error"
                                                for n in app._notifications), 30, "notice")
            assert all(inert(n.message) for n in app._notifications) and app.is_running

    asyncio.run(scenario())


# ---- exit codes (issue 12) -------------------------------------------------------------------
def _in_pty(args: list[str]) -> tuple[fastproc.Proc, int]:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = fastproc.popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=REPO,
                          start_new_session=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm-256color"})
    os.close(slave)
    return proc, master


def _drain_until(master: int, needle: bytes, timeout: float) -> bytes:
    import select

    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
    return seen


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_watch_exits_128_plus_the_signal(tmp_path, sig):
    import signal

    run = good_run(tmp_path / f"r{CLEAR}")
    proc, master = _in_pty(["watch", str(run)])
    try:
        shown = _drain_until(master, b"read-only", 60)
        assert b"read-only" in shown, shown[-500:]
        assert b"\x1b[2J" not in shown.split(b"read-only")[0][-200:]
        proc.send_signal(getattr(signal, sig))
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            _drain_until(master, b"\x00never", 0.2)  # keep the pty flowing while it exits
        assert proc.wait(timeout=5) == 128 + getattr(signal, sig)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_app_exit_code_after_sigterm_and_after_a_crash(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import tui_nn.tui.screens.watch as watch_mod
    from tui_nn.cli import app as cli_app
    from tui_nn.tui.app import make_app

    async def scenario():
        app = make_app(train_options={"runs_root": str(tmp_path)})
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.main.run_state != "loading", 120, "catalog")
            app._on_signal(15)  # what the loop's SIGTERM handler calls
            await wait_until(pilot, lambda: app.return_code is not None, 20, "exit")
        return app.return_code

    assert asyncio.run(scenario()) == 143

    class Crashed:  # an app that ended on an uncaught exception (Textual's return code 1)
        return_code = 1

        def __init__(self, run_dir, **kwargs):
            pass

        def run(self):
            pass

    good_run(tmp_path / "runs" / "a")
    monkeypatch.setattr(watch_mod, "WatchApp", Crashed)
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli_app, ["watch"]).exit_code == 1


@pytest.mark.parametrize("kind,said", [("deep", "skipped lines"), ("types", "skipped lines"),
                                       ("fifo", "metrics.jsonl is not a regular file"),
                                       ("symlink", "config.json is a symlink")])
def test_watch_says_once_what_it_could_not_read(tmp_path, kind, said):
    from tui_nn.tui.screens.watch import WatchApp

    run = hostile_tree(tmp_path, big_line=False)[kind]

    async def scenario():
        app = WatchApp(run)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.watch_screen
            log = screen.query_one("#watch-log").lines_written
            await wait_until(pilot, lambda: any(said in line for line in log), 10, said)
            await pilot.pause(0.5)
            assert sum(said in line for line in log) == 1 and app.is_running
            if kind in ("deep", "types"):
                assert screen.epochs_seen == 2  # the good records around the bad ones

    asyncio.run(scenario())


def test_export_of_a_hostile_run_prints_clean_lines(tmp_path):
    runs = hostile_tree(tmp_path, big_line=False)
    for kind in ("escapes", "deep", "big", "fifo"):
        result = cli("export", str(runs[kind]), "--out", str(tmp_path / f"out-{kind}"))
        assert result.returncode == 0, result.stderr
        assert inert(result.stdout) and inert(result.stderr) and "wrote" in result.stdout
    result = cli("export", str(runs["escapes"]))  # into the run directory: its name is printed
    assert result.returncode == 0 and inert(result.stdout) and "\\x1b]0;pwned" in result.stdout


def test_a_failing_worker_in_the_resume_dialog_or_a_lesson_is_a_notification(tmp_path,
                                                                              monkeypatch):
    from textual.app import App
    from textual.widgets import Input

    import tui_nn.runs as runs_pkg
    from tui_nn.tui.screens.activations import ActivationsScreen
    from tui_nn.tui.screens.resume import ResumeScreen

    def broken(*args, **kwargs):
        raise RuntimeError(f"disk{CLEAR} on fire")

    monkeypatch.setattr(runs_pkg, "discover_runs", broken)

    class TwoApp(App):
        def on_mount(self):
            self.push_screen(ResumeScreen(tmp_path))

    async def scenario():
        app = TwoApp()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: any("on fire" in str(n.message)
                                                for n in app._notifications), 10, "notice")
            assert isinstance(app.focused, Input) and app.is_running
            app.pop_screen()
            screen = ActivationsScreen()
            monkeypatch.setattr(screen, "_compute", lambda: screen.run_worker(
                broken, thread=True, name="activations", exit_on_error=False))
            app.push_screen(screen)
            await wait_until(pilot, lambda: any(n.title == "activations failed"
                                                for n in app._notifications), 10, "lesson")
            assert app.is_running and isinstance(app.screen, ActivationsScreen)

    asyncio.run(scenario())


def test_the_runs_screen_over_a_hostile_tree_while_training_keeps_the_run_going(tmp_path):
    from helpers import line_dataset

    from tui_nn.tui.app import make_app
    from tui_nn.tui.screens.runs import RunsScreen

    hostile_tree(tmp_path, big_line=False)

    async def scenario():
        app = make_app(model="linear", train_options={"epochs": 1_000_000,
                                                      "runs_root": str(tmp_path)},
                       dataset=line_dataset())
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.main.run_state != "loading"
                             and app.main.model_source is not None, 120, "catalog")
            await pilot.press("s")
            await wait_until(pilot, lambda: app.main.bridge.latest is not None, 60, "training")
            app.main.query_one("#zoo").focus()
            await pilot.press("r")
            await wait_until(pilot, lambda: isinstance(app.screen, RunsScreen)
                             and app.screen.loaded, 20, "runs screen")
            assert len(app.screen.runs) == 9  # the 8 runs + the one training now
            step = app.main.bridge.latest.step
            await wait_until(pilot, lambda: app.main.bridge.latest.step > step, 20, "more steps")
            assert app.main.bridge.running and app.is_running
            app._on_signal(15)
            await wait_until(pilot, lambda: app.return_code is not None, 30, "exit")
        assert app.return_code == 143

    asyncio.run(scenario())


def _pty_output(args: list[str], timeout: float = 120) -> tuple[int, bytes]:
    proc, master = _in_pty(args)
    try:
        out = b""
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            out += _drain_until(master, b"\x00never", 0.2)
        out += _drain_until(master, b"\x00never", 0.3)
        return proc.wait(timeout=5), out
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_runs_and_inspect_on_a_terminal_send_no_hostile_sequences(tmp_path):
    hostile_tree(tmp_path / "runs", big_line=False)
    code, out = _pty_output(["runs", "--root", str(tmp_path / "runs")])
    assert code == 0 and b"good-run" in out and b"x[/]y" in out
    assert b"\x1b]" not in out and b"\x1b[2J" not in out and b"\x07" not in out

    model = tmp_path / "net.py"
    model.write_text(HOSTILE_MODEL)
    code, out = _pty_output(["inspect", f"{model}:Net", "--input", "4"])
    assert code == 0, out[-2000:]
    assert b"x[/]" in out and b"click[/link]" in out
    assert b"\x1b]8;" not in out and b"\x1b]0;" not in out and b"\x07" not in out


@given(name=hostile_text(), model=hostile_text(), dataset=hostile_text(), message=hostile_text(),
       kind=hostile_text())
@settings(max_examples=60, deadline=None)
def test_any_strings_in_a_run_directory_give_an_inert_runs_table(name, model, dataset, message,
                                                                   kind):
    import tempfile

    from tui_nn.commands.runs_cmd import runs_table
    from tui_nn.runs import read_run_info

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"model": model, "dataset": dataset,
                                                     "task": kind}))
        (run / "metrics.jsonl").write_text(
            record(**started(model=model, dataset=dataset, device_name=message))
            + record(type="StateChanged", state=message)
            + record(type="Failed", message=message, kind=kind))
        info = read_run_info(run, name=name or "x", check_writers=False)
        table = runs_table([info])
        assert inert(table) and len(table.splitlines()) == 3
        # Made inert where the record is decoded (issue 26): every view gets the same text.
        assert info.status == "failed" and info.message == clean(message or "failed")
