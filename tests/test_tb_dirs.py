"""TensorBoard log directories of other frameworks: listed by `tui-nn runs`, followed by
`tui-nn watch`. The logs are written here with torch's SummaryWriter, in its own layout and in
Lightning's (lightning_logs/version_0 with hparams.yaml; Lightning itself is not needed)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tui_nn.cli import app as cli_app
from tui_nn.runs import discover_runs, read_run_info, resolve_run
from tui_nn.runs import tensorboard as tb

pytest.importorskip("tensorboard")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from tui_nn.tui.screens.tb_watch import (GroupPlot, TagSeries,  # noqa: E402
                                         TensorBoardWatchApp, tag_group)

SIZE = (100, 30)


def write_steps(writer: SummaryWriter, steps: range, val_every: int = 10) -> None:
    for s in steps:
        writer.add_scalar("train/loss", 1.0 / (s + 1), s)
        if s % val_every == val_every - 1:
            writer.add_scalar("val/loss", 0.5 / (s + 1), s)
            writer.add_scalar("val/accuracy", min(0.99, s / 50), s)
    writer.flush()


def summary_writer_dir(path: Path, steps: int = 50) -> Path:
    with SummaryWriter(str(path)) as w:
        write_steps(w, range(steps))
    return path


def lightning_dir(root: Path, epochs: int = 3, steps_per_epoch: int = 4) -> Path:
    """What Lightning's TensorBoardLogger leaves: lightning_logs/version_0/{hparams.yaml,
    events.out.tfevents.*} with tags train_loss, val_loss, val_acc and epoch."""
    version = root / "lightning_logs" / "version_0"
    with SummaryWriter(str(version)) as w:
        step = 0
        for e in range(epochs):
            for _ in range(steps_per_epoch):
                w.add_scalar("train_loss", 1.0 / (step + 1), step)
                w.add_scalar("epoch", float(e), step)
                step += 1
            w.add_scalar("val_loss", 0.5 / (e + 1), step - 1)
            w.add_scalar("val_acc", 0.5 + 0.1 * e, step - 1)
            w.add_scalar("epoch", float(e), step - 1)
    (version / "hparams.yaml").write_text("lr: 0.01\n")
    return version


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# ---- reading -----------------------------------------------------------------------------------
def test_the_follower_reads_only_new_events_and_waits_for_an_unfinished_record(tmp_path):
    log = tmp_path / "log"
    writer = SummaryWriter(str(log))
    follower = tb.TensorBoardFollower(log)
    write_steps(writer, range(20))
    first = follower.poll()
    assert [(p.tag, p.step) for p in first if p.tag == "train/loss"] == [
        ("train/loss", s) for s in range(20)]
    assert {p.tag for p in first} == {"train/loss", "val/loss", "val/accuracy"}
    assert follower.poll() == []  # nothing new: nothing read again
    write_steps(writer, range(20, 30))
    second = follower.poll()
    assert [p.step for p in second if p.tag == "train/loss"] == list(range(20, 30))
    assert second[0].value == pytest.approx(1 / 21)
    writer.close()

    # A writer between two writes: the last record half on disk, then completed.
    whole = tb.event_files(log)[0].read_bytes()
    copy = tmp_path / "copy"
    copy.mkdir()
    target = copy / tb.event_files(log)[0].name
    target.write_bytes(whole[:-7])
    partial = tb.TensorBoardFollower(copy)
    got = partial.poll()
    assert len(got) == len(first) + len(second) - 1 and partial.problem is None
    with open(target, "ab") as f:
        f.write(whole[-7:])
    last = partial.poll()
    assert [(p.tag, p.step) for p in last] == [(second[-1].tag, second[-1].step)]


def test_add_scalars_subdirectories_are_curves_of_their_parent(tmp_path):
    log = tmp_path / "log"
    with SummaryWriter(str(log)) as w:
        for s in range(3):
            w.add_scalar("lr", 0.1, s)
            w.add_scalars("loss", {"train": 1.0 / (s + 1), "val": 2.0 / (s + 1)}, s)
    follower = tb.TensorBoardFollower(log)
    points = follower.poll()
    by_tag: dict[str, list[int]] = {}
    for p in points:
        by_tag.setdefault(p.tag, []).append(p.step)
    assert by_tag == {"lr": [0, 1, 2], "loss/train": [0, 1, 2], "loss/val": [0, 1, 2]}
    assert [r.name for r in discover_runs(tmp_path)] == ["log"]  # one run, not three


def test_a_damaged_event_file_is_noted_and_never_breaks_the_listing(tmp_path):
    good = summary_writer_dir(tmp_path / "runs" / "good")
    bad = tmp_path / "runs" / "bad"
    bad.mkdir()
    (bad / "events.out.tfevents.1.host.0").write_bytes(b"\x00\xff garbage" * 100)
    cut = tmp_path / "runs" / "cut"
    cut.mkdir()
    data = tb.event_files(good)[0].read_bytes()
    (cut / "events.out.tfevents.2.host.0").write_bytes(data[: len(data) // 2])
    infos = {r.name: r for r in discover_runs(tmp_path / "runs")}
    assert set(infos) == {"good", "bad", "cut"}
    assert all(r.kind == "tensorboard" for r in infos.values())
    assert "no readable event" in (infos["bad"].message or "")
    assert infos["bad"].steps_done == 0
    assert 0 < infos["cut"].steps_done < infos["good"].steps_done == 49
    follower = tb.TensorBoardFollower(bad)
    assert follower.poll() == [] and follower.problem


def test_runs_lists_summarywriter_and_lightning_dirs_and_tui_nn_runs_stay_tui_nn(tmp_path):
    root = tmp_path / "runs"
    summary_writer_dir(root / "exp1")
    lightning_dir(root)
    own = root / "20250101-120000-cnn-digits"  # a tui-nn run holds event files too
    own.mkdir()
    (own / "config.json").write_text(json.dumps({"model": "cnn", "dataset": "digits"}))
    (own / "metrics.jsonl").write_text("")
    summary_writer_dir(own, steps=3)
    result = CliRunner().invoke(cli_app, ["runs", "--root", str(root), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == {"exp1", "lightning_logs/version_0", "20250101-120000-cnn-digits"}
    assert rows["20250101-120000-cnn-digits"]["kind"] == "tui-nn"
    assert rows["20250101-120000-cnn-digits"]["model"] == "cnn"
    exp1 = rows["exp1"]
    assert (exp1["kind"], exp1["steps_done"], exp1["metric"]) == ("tensorboard", 49, "accuracy")
    assert exp1["best_value"] == pytest.approx(0.98)
    assert exp1["status"] == "running"  # written a moment ago
    lit = rows["lightning_logs/version_0"]
    assert (lit["steps_done"], lit["epochs_done"], lit["metric"]) == (11, 3, "accuracy")
    assert lit["best_value"] == pytest.approx(0.7)
    table = CliRunner().invoke(cli_app, ["runs", "--root", str(root)])
    assert "lightning_logs/version_0" in table.output and "acc 70.00%" in table.output


def test_a_hugging_face_trainer_layout_is_listed_from_its_output_dir(tmp_path, monkeypatch):
    # Trainer(report_to="tensorboard") logs into <output_dir>/runs/<date>_<host>, with
    # train/loss, train/learning_rate, train/epoch (epochs as a fraction) and eval/* tags.
    log = tmp_path / "out" / "runs" / "Nov30_12-00-00_host"
    with SummaryWriter(str(log)) as w:
        for step in range(1, 31):
            w.add_scalar("train/loss", 1 / step, step)
            w.add_scalar("train/learning_rate", 1e-3, step)
            w.add_scalar("train/epoch", step / 10, step)
            if step % 10 == 0:
                w.add_scalar("eval/loss", 2 / step, step)
                w.add_scalar("eval/accuracy", 0.6 + step / 100, step)
    monkeypatch.chdir(tmp_path / "out")  # `tui-nn runs` in the output dir: ./runs
    [info] = discover_runs()
    assert (info.name, info.kind, info.steps_done, info.epochs_done) == (
        "Nov30_12-00-00_host", "tensorboard", 30, 3)
    assert (info.metric, info.best_value) == ("accuracy", pytest.approx(0.9))


def test_an_idle_log_is_finished_and_its_best_loss_is_the_lowest(tmp_path):
    log = tmp_path / "log"
    with SummaryWriter(str(log)) as w:
        for s, v in enumerate([0.9, 0.4, 0.6]):
            w.add_scalar("eval/loss", v, s)
    flushed = time.time() - 200  # a live writer flushes every 120 s: still running
    for f in tb.event_files(log):
        os.utime(f, (flushed, flushed))
    assert read_run_info(log).status == "running"
    old = time.time() - 3600
    for f in tb.event_files(log):
        os.utime(f, (old, old))
    info = read_run_info(log)
    assert (info.status, info.metric, info.best_value, info.last_value) == (
        "finished", "loss", pytest.approx(0.4), pytest.approx(0.6))
    assert not info.resumable


def test_watch_and_resolve_take_a_lightning_version_dir(tmp_path, monkeypatch):
    version = lightning_dir(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert resolve_run("lightning_logs/version_0", "runs") == Path("lightning_logs/version_0")
    assert resolve_run("version_0", "lightning_logs") == Path("lightning_logs/version_0")
    assert tb.is_tensorboard_dir(version)


def test_watch_opens_the_tensorboard_view_on_a_log_and_the_run_view_on_a_run(tmp_path,
                                                                              monkeypatch):
    from tui_nn.tui import exits
    from tui_nn.tui.screens.watch import WatchApp

    opened = []
    monkeypatch.setattr(exits, "run_app", lambda app: opened.append(app) or 0)
    lightning_dir(tmp_path)
    own = tmp_path / "runs" / "mine"
    own.mkdir(parents=True)
    (own / "config.json").write_text(json.dumps({"model": "cnn"}))
    summary_writer_dir(own, steps=2)  # tui-nn's own event files: still a tui-nn run
    monkeypatch.chdir(tmp_path)
    for target in ("lightning_logs/version_0", "runs/mine"):
        result = CliRunner().invoke(cli_app, ["watch", target])
        assert result.exit_code == 0, result.output
    assert [type(a) for a in opened] == [TensorBoardWatchApp, WatchApp]
    result = CliRunner().invoke(cli_app, ["watch", "version_0", "--root", "lightning_logs"])
    assert result.exit_code == 0 and isinstance(opened[-1], TensorBoardWatchApp)


def test_export_and_control_say_what_a_log_directory_is(tmp_path):
    log = summary_writer_dir(tmp_path / "log", steps=2)
    result = CliRunner().invoke(cli_app, ["export", str(log), "--csv"])
    assert result.exit_code == 2 and "is a TensorBoard log directory" in result.output
    assert sorted(p.name for p in log.iterdir()) == [p.name for p in tb.event_files(log)]
    result = CliRunner().invoke(cli_app, ["control", str(log), "pause"])
    assert result.exit_code == 1 and "nothing steers it" in result.output
    assert "Traceback" not in result.output


def test_watch_without_tensorboard_says_what_to_install(tmp_path, monkeypatch):
    log = summary_writer_dir(tmp_path / "log", steps=2)
    monkeypatch.setitem(sys.modules, "tensorboard.backend.event_processing.event_file_loader",
                        None)
    result = CliRunner().invoke(cli_app, ["watch", str(log)])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: {tb.MISSING_MESSAGE}"
    assert "Traceback" not in result.output
    info = read_run_info(log)  # `runs` still lists it, saying why it shows nothing
    assert info.message == tb.MISSING_MESSAGE and info.kind == "tensorboard"


# ---- the watch screen ------------------------------------------------------------------------
def test_tag_series_view_is_bounded_ordered_and_keeps_the_last_point():
    s = TagSeries()
    for step in list(range(500, 1000)) + list(range(500)):  # a second file from step 0
        s.add(step, float(step))
    xs, ys = s.view(100)
    assert ys == [float(x) for x in xs]  # values stay with their steps when sorted
    assert len(xs) <= 101 and xs == sorted(xs) and xs[-1] == 999 and xs[0] == 0
    assert tag_group("train/loss") == "train/" and tag_group("epoch") == ""
    assert tag_group("val_acc") == "val_" and tag_group("grad_norm") == ""


def test_watch_follows_a_summarywriter_while_it_writes(tmp_path):
    log = tmp_path / "log"
    writer = SummaryWriter(str(log))
    write_steps(writer, range(20))

    async def scenario():
        app = TensorBoardWatchApp(log, poll_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.watch_screen
            await wait_for(lambda: screen.last_step == 19, what="the first 20 steps")
            assert set(screen.series) == {"train/loss", "val/loss", "val/accuracy"}
            await pilot.pause(0.1)
            plots = {p.group: p for p in screen.query(GroupPlot)}
            assert set(plots) == {"train/", "val/"}
            assert plots["val/"].tags == ["val/accuracy", "val/loss"]
            drawn = plots["train/"].redraws
            assert drawn >= 1
            write_steps(writer, range(20, 40))  # the writer goes on: new points appear
            await wait_for(lambda: screen.last_step == 39, what="steps 20-39")
            assert len(screen.series["train/loss"]) == 40
            await wait_for(lambda: plots["train/"].redraws > drawn, what="a redraw")
            assert "running" in str(screen.query_one("#tb-status").render())

            # The picker: hiding both val/ tags removes their plot.
            picker = screen.query_one("#tb-tags")
            picker.deselect("val/accuracy")
            picker.deselect("val/loss")
            await pilot.pause(0.1)
            assert {p.group for p in screen.query(GroupPlot)} == {"train/"}
            await pilot.press("a")  # none shown
            await pilot.pause(0.1)
            assert not list(screen.query(GroupPlot))
            await pilot.press("a")  # all shown
            await pilot.pause(0.1)
            assert {p.group for p in screen.query(GroupPlot)} == {"train/", "val/"}
            assert all(p.smoothing == 0.6 for p in screen.query(GroupPlot))
            train = next(p for p in screen.query(GroupPlot) if p.group == "train/")
            drawn = train.redraws
            await pilot.press("right_square_bracket")  # more smoothing, on every plot
            await wait_for(lambda: train.redraws > drawn, what="a smoother redraw")
            assert all(p.smoothing == 0.8 for p in screen.query(GroupPlot))
            titles = [c.title for c in app.get_system_commands(screen)]
            assert {"Tags: pick", "Tags: all or none", "Curves: toggle log axis"} <= set(titles)
    try:
        asyncio.run(scenario())
    finally:
        writer.close()


WRITER = """
import sys, time
from pathlib import Path
from torch.utils.tensorboard import SummaryWriter
log, go = sys.argv[1], Path(sys.argv[2])
w = SummaryWriter(log)
for s in range(10):
    w.add_scalar("train/loss", 1.0 / (s + 1), s)
w.flush()
while not go.exists():
    time.sleep(0.05)
for s in range(10, 25):
    w.add_scalar("train/loss", 1.0 / (s + 1), s)
    w.flush()
    time.sleep(0.02)
w.close()
"""


def test_watch_follows_another_process_writing_a_log(tmp_path):
    log, go = tmp_path / "log", tmp_path / "go"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(go)])

    async def scenario():
        app = TensorBoardWatchApp(log, poll_s=0.05)
        async with app.run_test(size=SIZE):
            screen = app.watch_screen
            await wait_for(lambda: screen.last_step == 9, timeout=60, what="the first steps")
            assert writer.poll() is None  # the writer is still there, waiting
            go.touch()
            await wait_for(lambda: screen.last_step == 24, timeout=30, what="the new steps")
            steps = screen.series["train/loss"].steps
            assert steps == list(range(25))  # each point once, in order
    try:
        asyncio.run(scenario())
    finally:
        go.touch()
        writer.wait(timeout=60)


def test_watch_a_lightning_log_and_many_tags_wait_in_the_picker(tmp_path):
    version = lightning_dir(tmp_path)
    with SummaryWriter(str(version)) as w:
        for i in range(12):
            w.add_scalar(f"layers/grad_norm_{i:02d}", float(i), 0)

    async def scenario():
        app = TensorBoardWatchApp(version, poll_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.watch_screen
            await wait_for(lambda: len(screen.series) == 16, what="all tags")
            await pilot.pause(0.1)
            picker = screen.query_one("#tb-tags")
            assert picker.option_count == 16
            # train, then val, then other groups, then ungrouped tags; the first 8 metrics
            # are drawn, the rest (and the epoch counter) wait to be picked.
            values = [picker.get_option_at_index(i).value for i in range(16)]
            assert values[:3] == ["train_loss", "val_acc", "val_loss"]
            assert values[3:15] == [f"layers/grad_norm_{i:02d}" for i in range(12)]
            assert values[15] == "epoch"
            assert sorted(picker.selected) == sorted(values[:8])
            groups = [p.group for p in screen.query(GroupPlot)]
            assert groups == ["train_", "val_", "layers/"]
            plots = {p.group: p for p in screen.query(GroupPlot)}
            assert plots["val_"].tags == ["val_acc", "val_loss"]
            assert len(plots["layers/"].tags) == 5
            picker.select("epoch")
            await pilot.pause(0.1)
            assert [p.group for p in screen.query(GroupPlot)][-1] == ""
    asyncio.run(scenario())


def test_tags_from_files_are_shown_inert(tmp_path):
    log = tmp_path / "log"
    evil = "train/\x1b]0;pwned\x07[bold red]loss[/]\u202e"
    with SummaryWriter(str(log)) as w:
        w.add_scalar(evil, 1.0, 0)
        w.add_scalar(evil, 0.5, 1)
        w.add_scalar("val/diverged", float("nan"), 0)  # plots with nothing finite to draw
        w.add_scalar("val/diverged", float("inf"), 1)
        w.add_scalar("val/huge", 3e38, 1)

    async def scenario():
        app = TensorBoardWatchApp(log, poll_s=0.05)
        async with app.run_test(size=SIZE) as pilot:
            screen = app.watch_screen
            await wait_for(lambda: screen.last_step == 1, what="the points")
            await pilot.pause(0.2)
            picker = screen.query_one("#tb-tags")
            prompt = str(picker.get_option_at_index(0).prompt)
            assert "\x1b" not in prompt and "\\x1b" in prompt and "\\u202e" in prompt
            assert "[bold red]loss[/]" in prompt  # shown as typed, not as markup
            plots = list(screen.query(GroupPlot))
            assert len(plots) == 2 and all(p.redraws >= 1 for p in plots)
            before = [p.redraws for p in plots]
            await pilot.press("g")  # log axis: non-positive and non-finite values left out
            await wait_for(lambda: all(p.redraws > b for p, b in zip(plots, before)),
                           what="redraws on a log axis")
            assert all(p.log_scale for p in plots)
    asyncio.run(scenario())


def test_the_runs_screen_lists_a_log_beside_runs_and_the_view_opens_over_it(tmp_path):
    from textual.app import App

    from tui_nn.tui.screens.runs import OverlayPlot, RunsScreen
    from tui_nn.tui.screens.tb_watch import TensorBoardWatchScreen, watch_screen_for
    from tui_nn.tui.screens.watch import WatchScreen

    summary_writer_dir(tmp_path / "exp1", steps=20)

    class RunsApp(App):
        def on_mount(self):
            self.push_screen(RunsScreen(tmp_path))

    async def scenario():
        app = RunsApp()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: isinstance(app.screen, RunsScreen) and app.screen.loaded,
                           what="the runs screen")
            runs = app.screen.runs
            assert [(r.name, r.kind, r.steps_done) for r in runs] == [("exp1", "tensorboard", 19)]
            await pilot.press("space")  # marked for the overlay: no tui-nn curves, no error
            await pilot.pause(0.3)
            assert app.screen.query_one(OverlayPlot) is not None
            # What the runs screen's `w` does for a TensorBoard log (wired in at merge):
            screen = watch_screen_for(runs[0].path)
            assert isinstance(screen, TensorBoardWatchScreen)
            screen.poll_s = 0.05
            app.push_screen(screen)
            await wait_for(lambda: getattr(app.screen, "last_step", None) == 19,
                           what="the log's points")
            await pilot.press("escape")
            assert isinstance(app.screen, RunsScreen)
    asyncio.run(scenario())
    own = tmp_path / "mine"
    own.mkdir()
    (own / "config.json").write_text("{}")
    assert isinstance(watch_screen_for(own), WatchScreen)


def test_the_apps_watch_newest_opens_a_log_in_the_tensorboard_view(tmp_path):
    from tui_nn.tui.app import make_app
    from tui_nn.tui.screens.tb_watch import TensorBoardWatchScreen

    summary_writer_dir(tmp_path / "exp1", steps=5)

    async def scenario():
        app = make_app(train_options={"runs_root": str(tmp_path)})
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(lambda: app.main.run_state != "loading", 60, "the catalog")
            app.action_watch_newest()
            await wait_for(lambda: isinstance(app.screen, TensorBoardWatchScreen), 5, "view")
            await wait_for(lambda: app.screen.last_step == 4, what="the log's points")
            await pilot.press("escape")
            assert not isinstance(app.screen, TensorBoardWatchScreen)
    asyncio.run(scenario())
