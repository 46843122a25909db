"""One run view (issue 27, item 4): the Train tab and `watch` draw a run with the same RunView,
fed the engine's events through apply(); the console and the view share one epoch line; every
Textual message is a dataclass."""

from __future__ import annotations

import dataclasses
import importlib
import io
import pkgutil

from textual.app import App
from textual.message import Message

import tui_nn.tui
from tui_nn.commands.console import PlainReporter
from tui_nn.engine import events as ev
from tui_nn.fmt import epoch_line
from tui_nn.tui.history import RunHistory
from tui_nn.tui.widgets.run_view import RunView
from tui_nn.tui.widgets.system_pane import SystemPane

from pilot_helpers import wait_for


def started(epochs: int = 3, **changes) -> ev.RunStarted:
    fields = dict(model="mlp", dataset="blobs", run_dir=None, device="cpu", device_name="CPU",
                  task="classification", parameters=1234, n_train=96, n_val=32, epochs=epochs,
                  steps_per_epoch=3, total_steps=3 * epochs, batch_size=32, metric="accuracy")
    return ev.RunStarted(**{**fields, **changes})


def epoch(i: int, best: bool = False) -> ev.EpochMetrics:
    return ev.EpochMetrics(epoch=i, step=3 * (i + 1), train_loss=1.0 / (i + 1), val_loss=0.5,
                           metric="accuracy", value=0.5 + i / 10, best_value=0.9,
                           is_best=best, elapsed_s=1.0, epoch_time_s=0.4, samples_per_s=240.0)


class OneView(App):
    def compose(self):
        yield RunView(RunHistory(), SystemPane(id="system", pid=None), id="row", prefix="t",
                      log_id="log", arrangement="side")


def test_every_textual_message_is_a_dataclass():
    """No Message subclass in the app hand-writes __init__ (toolong's and posting's style)."""
    for info in pkgutil.walk_packages(tui_nn.tui.__path__, "tui_nn.tui."):
        importlib.import_module(info.name)
    found = []

    def walk(cls):
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("tui_nn."):
                found.append(sub)
            walk(sub)

    walk(Message)
    assert len(found) > 30
    hand_written = [c.__qualname__ for c in found
                    if "__init__" in vars(c) and not dataclasses.is_dataclass(c)]
    assert hand_written == []


def test_the_console_and_the_view_print_the_same_epoch_line():
    out = io.StringIO()
    reporter = PlainReporter(out)
    reporter(started())
    reporter(epoch(0, best=True))
    line = out.getvalue().splitlines()[-1]
    assert line == epoch_line(epoch(0, best=True), 3)
    assert line.startswith("epoch 1/3 train_loss 1.0000 val_loss 0.5000 accuracy 50.00% *")
    assert line.endswith("(0.4s, 240 samples/s)")
    # A figure the loop did not give (0) is left out, never printed as "/0" or "0 samples/s".
    bare = dataclasses.replace(epoch(1), epoch_time_s=0.0, samples_per_s=0.0)
    assert epoch_line(bare, 0) == "epoch 2 train_loss 0.5000 val_loss 0.5000 accuracy 60.00%"
    blown = dataclasses.replace(epoch(1), train_loss=1e308)
    assert "train_loss 1e+308" in epoch_line(blown, 3)


async def test_apply_draws_status_log_and_memory_from_events():
    app = OneView()
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(RunView)
        view.apply(started())
        for i in range(2):
            view.apply(ev.StepMetrics(
                epoch=i, step=3 * (i + 1), first_step=3 * i + 1, losses=(0.3, 0.3, 0.3),
                lr=0.01, samples_per_s=100.0, eta_s=1.0, epoch_step=3, steps_per_epoch=3,
                total_steps=9))
            view.apply(epoch(i, best=i == 1))
        # Steps and epochs are shown once per flush: after the current message.
        await wait_for(pilot, lambda: view.status.epoch is not None, what="flush")
        assert view.status.started.model == "mlp" and view.status.latest.step == 6
        assert view.status.epoch.epoch == 1 and view.status.best_epoch == 2
        view.apply(ev.Finished(status="finished", run_dir=None, epochs_done=2, step=6,
                               metric="accuracy", best_value=0.6, last_value=0.6, elapsed_s=1.0))
        lines = app.query_one("#log").lines_written
        assert lines[:2] == ["started mlp on blobs",
                             "3 epochs × 3 steps, batch 32, 1,234 params, 96 train / 32 val, CPU"]
        assert lines[2:] == [epoch_line(epoch(0), 3, timing=False),
                             epoch_line(epoch(1, best=True), 3, timing=False),
                             "run finished: 2 epochs, 6 steps"]
        assert view.final is not None and not view.curves.live


async def test_fast_epochs_read_as_one_line_per_flush():
    app = OneView()
    async with app.run_test(size=(100, 30)):
        view = app.query_one(RunView)
        view.apply(started(epochs=40))
        for i in range(10):
            view.apply(epoch(i))
        view.flush()
        lines = app.query_one("#log").lines_written
        assert lines[-1] == epoch_line(epoch(9), 40, first=0, timing=False)
        assert lines[-1].startswith("epochs 1–10/40 ")


async def test_the_train_tab_and_watch_log_a_run_alike(tmp_path):
    """A run trained in the app, then watched from its directory: the same epoch lines and the
    same end line, drawn by the same widget."""
    from test_tui import line_data, log_text, ready
    from test_watch import no_nvml
    from tui_nn.tui.app import make_app
    from tui_nn.tui.screens.watch import WatchApp

    app = make_app(model="linear", train_options={"epochs": 2, "runs_root": str(tmp_path)},
                   dataset=line_data())
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, inspected=False)
        assert isinstance(app.main.query_one("#train-row"), RunView)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.main.run_state == "finished", timeout=40,
                       what="finish")
        await pilot.pause(0.2)
        trained = [line for line in log_text(app).splitlines()
                   if line.startswith(("epoch ", "run "))]
    run_dir = next(tmp_path.iterdir())
    watch = WatchApp(run_dir, gpu_reader=no_nvml)
    async with watch.run_test(size=(120, 40)) as pilot:
        screen = watch.watch_screen
        await wait_for(pilot, lambda: screen.status == "finished", what="watched end")
        assert isinstance(screen.query_one("#watch-row"), RunView)
        watched = [line for line in screen.query_one("#watch-log").lines_written
                   if line.startswith(("epoch ", "run "))]
    assert trained[-1] == watched[-1] and trained[-1].startswith("run finished: 2 epochs, ")
    assert [line for line in trained if line.startswith("epoch ")][-1].startswith("epoch 2/2 ")
