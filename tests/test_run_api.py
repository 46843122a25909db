"""tui_nn.Run end to end: a hand-written loop in a subprocess is listed by `runs`, followed by
`watch`, paused, resumed and stopped by `tui-nn control`; an exception becomes a Failed
record; importing it loads no torch, textual or rich."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import fastproc
import pytest

import tui_nn
from tui_nn.engine.channel import SOCKET_FILE
from tui_nn.runs import read_run_info

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}

LOOP = textwrap.dedent("""
    import sys, time
    import tui_nn
    with tui_nn.Run(sys.argv[1], model="my-net", dataset="shards", metric="accuracy",
                    config={"lr": 0.1}, epochs=1000, steps_per_epoch=20,
                    report_interval_s=0.05) as run:
        for epoch in range(1000):
            for step in range(20):
                run.log_step(loss=1.0 / (1 + run.step), lr=0.1, grad_norm=0.5)
                run.wait_while_paused()
                if run.stop_requested:
                    break
                if run.checkpoint_requested:
                    run.checkpoint_saved("ckpt.pt")
                time.sleep(0.005)
            if run.stop_requested:
                break
            run.log_epoch(val_loss=0.5, accuracy=min(0.99, 0.5 + epoch * 0.01))
""")


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _wait(test, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.05)
    raise AssertionError(f"never saw {what}")


def test_importing_tui_nn_and_run_loads_no_torch_textual_or_rich():
    code = ("import sys, tui_nn; tui_nn.Run; import tui_nn.run; "
            "print([m for m in ('torch', 'textual', 'rich', 'typer') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_a_loop_is_listed_watched_paused_resumed_and_stopped(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    run = tmp_path / "runs" / "mine"
    proc = subprocess.Popen([sys.executable, str(script), str(run)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait(lambda: (run / SOCKET_FILE).exists() and '"EpochMetrics"'
              in (run / "metrics.jsonl").read_text(), "an epoch")
        info = read_run_info(run)
        assert (info.status, info.model, info.dataset) == ("running", "my-net", "shards")
        assert not info.resumable  # a loop resumes itself, not via tui-nn train
        cli = ["control", str(run)]
        assert fastproc.run(cli + ["pause"], env=ENV).returncode == 0
        _wait(lambda: any(r.get("state") == "paused" for r in _records(run)), "paused")
        steps = _records(run)[-1]
        time.sleep(0.5)
        assert _records(run)[-1] == steps  # nothing logged while paused
        assert fastproc.run(cli + ["checkpoint"], env=ENV).returncode == 0
        assert fastproc.run(cli + ["resume"], env=ENV).returncode == 0
        _wait(lambda: any(r.get("reason") == "requested" for r in _records(run)),
              "the loop's checkpoint")
        # The loop never calls run.apply_lr: an lr request is refused (exit 1, the reason).
        from tui_nn.engine.channel import query_honours
        assert query_honours(run) == ("pause", "resume", "checkpoint", "stop")
        refused = fastproc.run(cli + ["lr", "0.5"], env=ENV, capture_output=True, text=True)
        assert refused.returncode == 1 and "run.apply_lr(optimizer)" in refused.stderr
        assert "taken" not in refused.stdout
        assert fastproc.run(cli + ["stop"], env=ENV).returncode == 0
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    records = _records(run)
    assert records[-1]["type"] == "Finished" and records[-1]["status"] == "stopped"
    assert read_run_info(run).status == "stopped"
    assert not any(r["type"] == "LrScaled" for r in records)
    steps = [r for r in records if r["type"] == "StepMetrics"]
    assert steps[0]["scalars"] == {"grad_norm": 0.5}
    logged = [s for r in steps for s in range(r["first_step"], r["step"] + 1)]
    assert logged == list(range(1, records[-1]["step"] + 1))  # every step once, in order


async def test_watch_follows_a_loop_run(tmp_path):
    from pilot_helpers import wait_for_live as wait_for
    from test_watch import no_nvml
    from tui_nn.tui.screens.watch import WatchApp

    run = tmp_path / "w"
    with tui_nn.Run(run, model="net", metric="accuracy", epochs=2, steps_per_epoch=5) as r:
        for _ in range(2):
            for _ in range(5):
                r.log_step(loss=0.5)
            r.log_epoch(val_loss=0.4, accuracy=0.9)
    app = WatchApp(run, gpu_reader=no_nvml)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.watch_screen.epochs_seen == 2, what="two epochs")
        assert list(app.watch_screen.history.steps)[-1] == 10


def test_an_exception_in_the_loop_is_a_failed_record(tmp_path):
    run = tmp_path / "boom"
    with pytest.raises(ZeroDivisionError):
        with tui_nn.Run(run, model="net") as r:
            r.log_step(loss=1.0)
            1 / 0
    last = _records(run)[-1]
    assert last["type"] == "Failed" and last["message"].startswith("ZeroDivisionError")
    assert "Traceback" in last["details"]["traceback"]
    assert read_run_info(run).status == "failed"
    assert not (run / SOCKET_FILE).exists()


def test_a_loss_tensor_is_not_read_back_per_step(tmp_path):
    torch = pytest.importorskip("torch")

    class NoSync(torch.Tensor):
        def item(self):
            raise AssertionError("a per-step host sync")

        def __float__(self):
            raise AssertionError("a per-step host sync")

    with tui_nn.Run(tmp_path / "t", model="net", report_interval_s=3600) as r:
        for i in range(100):
            r.log_step(loss=torch.tensor(float(i)).as_subclass(NoSync))
    steps = [x for x in _records(tmp_path / "t") if x["type"] == "StepMetrics"]
    assert len(steps) == 1 and steps[0]["losses"] == [float(i) for i in range(100)]


def test_only_rank_0_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with tui_nn.Run(tmp_path / "r1", model="net") as r:
        r.log_step(loss=1.0)
        r.log_epoch(val_loss=1.0)
    assert not (tmp_path / "r1").exists()


def test_a_used_directory_is_refused(tmp_path):
    from tui_nn.engine.rundir import RunDirError
    with tui_nn.Run(tmp_path / "u", model="net") as r:
        r.log_step(loss=1.0)
    with pytest.raises(RunDirError, match="already holds a run"):
        with tui_nn.Run(tmp_path / "u", model="net"):
            pass


def test_many_steps_in_one_interval_are_split_under_the_readers_limit(tmp_path):
    """200,000 quick steps inside one report interval: every line stays under the readers'
    1 MB limit, so watch's follower and the history readers get every step."""
    from tui_nn.engine.jsonl import MAX_LINE_BYTES
    from tui_nn.runs.follow import MetricsFollower
    from tui_nn.runs.history import load_history

    run = tmp_path / "quick"
    n = 200_000
    with tui_nn.Run(run, model="net", report_interval_s=3600) as r:
        for i in range(n):
            r.log_step(loss=1.0 / (i + 3), lr=0.1, grad_norm=0.25)
    lines = (run / "metrics.jsonl").read_bytes().splitlines()
    assert max(len(line) for line in lines) < MAX_LINE_BYTES // 2
    follower = MetricsFollower(run)
    got = []
    while True:
        new = follower.poll()
        if not new:
            break
        got += new
    assert follower.skipped == 0
    steps = [x for x in got if x["type"] == "StepMetrics"]
    logged = [s for x in steps for s in range(x["first_step"], x["step"] + 1)]
    assert logged == list(range(1, n + 1))
    assert [x["losses"][0] for x in steps][:2] == [1 / 3, 1 / (10_000 + 3)]
    assert steps[-1]["scalars"] == {"grad_norm": 0.25}  # the values at the last step
    history = load_history(run)
    assert len(history.losses) == n and history.losses[-1] == 1.0 / (n + 2)


async def test_watch_draws_every_step_of_a_quick_loop(tmp_path):
    from pilot_helpers import wait_for_live as wait_for
    from test_watch import no_nvml
    from tui_nn.tui.screens.watch import WatchApp

    run = tmp_path / "quick"
    with tui_nn.Run(run, model="net", report_interval_s=3600) as r:
        for i in range(200_000):
            r.log_step(loss=1.0 / (i + 3))
    app = WatchApp(run, gpu_reader=no_nvml)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.watch_screen
        await wait_for(pilot, lambda: screen.status == "finished", 60, what="the end")
        assert screen.history.train.count == 200_000 and screen.skipped_records == 0
        log = "\n".join(screen.query_one("#watch-log").lines_written)
    assert "skipped" not in log and log.endswith("run finished: 200,000 steps")


def test_a_huge_exception_message_still_fits_in_one_record(tmp_path):
    from tui_nn.engine.jsonl import MAX_LINE_BYTES

    with pytest.raises(ValueError):
        with tui_nn.Run(tmp_path / "big", model="net") as r:
            r.log_step(loss=1.0)
            raise ValueError("é" * 2_000_000)
    last = (tmp_path / "big" / "metrics.jsonl").read_bytes().splitlines()[-1]
    assert len(last) < MAX_LINE_BYTES and json.loads(last)["type"] == "Failed"
    assert read_run_info(tmp_path / "big").status == "failed"


async def test_watch_leaves_out_what_a_loop_did_not_give(tmp_path):
    """A loop that gives no epoch count, steps per epoch, batch size, parameter count or lr:
    watch shows no `epoch 1/0`, `step N/0`, samples/s, `0 params` or `lr 0`."""
    from pilot_helpers import wait_for_live as wait_for
    from test_watch import no_nvml
    from tui_nn.tui.screens.watch import WatchApp

    run = tmp_path / "bare"
    with tui_nn.Run(run, model="m") as r:
        for i in range(50):
            r.log_step(loss=1.0 / (i + 1))
        r.log_epoch(val_loss=0.4)
        for i in range(7):
            r.log_step(loss=0.1)
    app = WatchApp(run, gpu_reader=no_nvml)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.watch_screen
        await wait_for(pilot, lambda: screen.status == "finished", what="the end")
        await pilot.pause()
        status = screen.query_one("#status")
        shown = "\n".join(str(status.query_one(f"#{part}").render()) for part in (
            "status-head", "epoch-label", "step-label", "status-numbers"))
        log = "\n".join(screen.query_one("#watch-log").lines_written)
    assert "epoch 2" in shown and "step 57" in shown and "loss 0.1" in shown
    for absent in ("/0", "samples/s", "samples", "params", "lr ", "ETA", " - "):
        assert absent not in shown, (absent, shown)
    assert log.startswith("started m\nyour loop\n"), log  # no "on -", no "0 epochs x 0 steps"
    assert "run finished: 1 epochs, 57 steps" in log


def test_log_step_after_the_block_is_a_clear_error_and_writes_nothing(tmp_path):
    run = tmp_path / "after"
    with tui_nn.Run(run, model="net") as r:
        r.log_step(loss=1.0)
    before = (run / "metrics.jsonl").read_bytes()
    for call in (lambda: r.log_step(loss=2.0), lambda: r.log_epoch(val_loss=1.0),
                 lambda: r.checkpoint_saved("x.pt")):
        with pytest.raises(RuntimeError, match=r"after the `with` block.*open a new"):
            call()
    assert (run / "metrics.jsonl").read_bytes() == before  # nothing after Finished
    with pytest.raises(RuntimeError, match="before the run is open"):
        tui_nn.Run(tmp_path / "never", model="net").log_step(loss=1.0)
    assert not (tmp_path / "never").exists()


def test_a_loss_that_is_not_one_value_fails_the_run(tmp_path):
    """A (2,)-tensor loss: a clear error where it is logged, and a Failed record (status
    failed, not interrupted), also when it is only read back when the block ends."""
    torch = pytest.importorskip("torch")
    run = tmp_path / "vec"
    with pytest.raises(ValueError, match=r"loss must be a number or a one-element tensor"):
        with tui_nn.Run(run, model="net", report_interval_s=3600) as r:
            r.log_step(loss=torch.tensor(1.0))
            r.log_step(loss=torch.ones(2))
    last = _records(run)[-1]
    assert last["type"] == "Failed" and "shape (2,)" in last["message"]
    assert read_run_info(run).status == "failed"
    assert not (run / SOCKET_FILE).exists()
    # A value whose read-back fails only at the block's end: recorded, then raised.
    run = tmp_path / "late"
    with pytest.raises(RuntimeError, match="shape"):
        with tui_nn.Run(run, model="net", report_interval_s=3600) as r:
            r.log_step(loss=1.0, weird=torch.tensor([2.0]))
            r._pending.append(torch.ones(3))  # what an older log_step let through
    assert _records(run)[-1]["type"] == "Failed"
    assert read_run_info(run).status == "failed"


async def test_watch_offers_no_steering_keys_for_a_dead_run(tmp_path):
    """A loop killed with SIGKILL leaves its control.sock behind: watch says interrupted and
    offers none of p, c, l, x."""
    import signal
    from pilot_helpers import wait_for_live as wait_for
    from test_watch import no_nvml
    from tui_nn.tui.screens.watch import WatchApp

    script = tmp_path / "loop.py"
    script.write_text(LOOP)
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(run)], env=ENV)
    try:
        _wait(lambda: (run / SOCKET_FILE).exists() and '"StepMetrics"'
              in (run / "metrics.jsonl").read_text(), "a step")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (run / SOCKET_FILE).is_socket()  # left behind
    app = WatchApp(run, gpu_reader=no_nvml)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.watch_screen
        await wait_for(pilot, lambda: screen.status == "interrupted", what="interrupted")
        await pilot.pause()
        assert not screen.steerable and "interrupted" in screen.steer_reason
        for action in ("steer", "stop_run"):
            assert screen.check_action(action, ()) is False
        assert "read-only" in screen.sub_title


class _Optimizer:  # what apply_lr touches of a torch optimizer
    def __init__(self, lr: float) -> None:
        self.param_groups = [{"lr": lr, "initial_lr": lr}]


def test_a_run_takes_only_the_requests_its_loop_acts_on(tmp_path):
    from tui_nn.engine.channel import query_honours, send

    with tui_nn.Run(tmp_path / "bare", model="net") as r:
        r.log_step(loss=1.0)
        assert query_honours(r.path) == ()
        for action in ("pause", "checkpoint", "lr", "stop"):
            answer = send(r.path, action, 0.5 if action == "lr" else None)
            assert answer["ok"] is False and answer["refused"], answer
        assert not r.paused and not r._stop.is_set()  # nothing was taken
        r.stop_requested, r.checkpoint_requested  # the loop polls these from now on
        assert query_honours(r.path) == ("checkpoint", "stop")
        assert send(r.path, "checkpoint")["ok"] is True
    opt = _Optimizer(0.1)
    with tui_nn.Run(tmp_path / "opt", model="net", optimizer=opt) as r:
        assert query_honours(r.path) == ("lr",)  # an optimizer handed over: lr is taken
        assert send(r.path, "lr", 0.5)["ok"] is True
        r.log_step(loss=1.0)  # applies it, and logs the optimizer's lr
    assert opt.param_groups[0] == {"lr": 0.05, "initial_lr": 0.05}
    records = _records(tmp_path / "opt")
    [scaled] = [x for x in records if x["type"] == "LrScaled"]
    assert (scaled["factor"], scaled["lr"]) == (0.5, 0.05)
    assert [x["lr"] for x in records if x["type"] == "StepMetrics"] == [0.05]
    d, g = _Optimizer(0.2), _Optimizer(0.4)  # two optimizers (a GAN): both scaled
    with tui_nn.Run(tmp_path / "two", model="net", optimizer=[d, g]) as r:
        assert send(r.path, "lr", 0.5)["ok"] is True
        r.log_step(loss=1.0)
    assert (d.param_groups[0]["lr"], g.param_groups[0]["lr"]) == (0.1, 0.2)


async def test_watch_hides_the_keys_a_loop_does_not_act_on(tmp_path):
    from pilot_helpers import wait_for_live as wait_for
    from test_watch import no_nvml
    from tui_nn.tui.screens.watch import WatchApp

    with tui_nn.Run(tmp_path / "some", model="net", report_interval_s=0.0) as r:
        r.log_step(loss=1.0)
        r.stop_requested  # polls stop only: no pause, checkpoint or lr
        app = WatchApp(r.path, gpu_reader=no_nvml)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = app.watch_screen
            await wait_for(pilot, lambda: screen.honours == ("stop",), what="what it takes")
            await pilot.pause()
            assert screen.steerable
            for what in ("toggle", "checkpoint", "lr"):
                assert not screen.check_action("steer", (what,))
            assert screen.check_action("stop_run", ())
            keys = set(screen.active_bindings)  # what the footer offers
            assert "x" in keys and not {"p", "c", "l"} & keys


def test_query_honours_of_an_older_run_or_a_busy_one(monkeypatch, tmp_path):
    from tui_nn.engine import channel

    answers = iter([{"ok": False, "error": "unknown action; one of pause, resume"},
                    {"ok": False, "error": "busy: too many clients"}])
    monkeypatch.setattr(channel, "send", lambda *a, **k: next(answers))
    assert channel.query_honours(tmp_path) == channel.ACTIONS  # an older run took them all
    assert channel.query_honours(tmp_path) is None  # not known now: asked again later


def test_two_loops_made_in_the_same_second_get_two_directories(tmp_path):
    first = tui_nn.Run(model="mlp", runs_root=tmp_path)
    second = tui_nn.Run(model="mlp", runs_root=tmp_path)
    with first, second:
        first.log_step(1.0)
        second.log_step(2.0)
    assert first.path != second.path
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.path.name,
                                                                  second.path.name])
