"""The GAN (the seed notes' last chapter): a two-network step through the Trainer's step plugin
seam, both losses in the run's records, a generated grid that changes as G learns, resume."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import fastproc
import torch

from data_helpers import write_mnist_raw
from helpers import blobs_images
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.engine.checkpoint import load_checkpoint

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_train_gan_headless_for_one_epoch_records_finite_d_and_g_losses(tmp_path):
    # A small MNIST in IDX files (the usual --dataset mnist --data-dir path), no network.
    write_mnist_raw(tmp_path / "data", n_train=256, n_test=64)
    run = tmp_path / "run"
    res = fastproc.run(
        ["train", "gan", "--dataset", "mnist", "--data-dir", str(tmp_path / "data"), "--epochs",
         "1", "--batch-size", "32", "--headless", "--run-dir", str(run)], capture_output=True,
        text=True, env=ENV, timeout=180)
    assert res.returncode == 0, res.stderr
    records = _records(run)
    steps = [r for r in records if r["type"] == "StepMetrics"]
    assert sum(len(r["losses"]) for r in steps) == 256 // 32
    # Each record holds D's and G's loss at its last step (as tui_nn.Run writes scalars).
    d = [r["scalars"]["d_loss"] for r in steps]
    g = [r["scalars"]["g_loss"] for r in steps]
    assert d and all(math.isfinite(v) and v > 0 for v in d + g)
    (epoch,) = [r for r in records if r["type"] == "EpochMetrics"]
    assert set(epoch["scalars"]) == {"d_loss", "g_loss"}  # the epoch's means
    assert all(math.isfinite(v) and v > 0 for v in epoch["scalars"].values())
    # The loss curve is the game's total: D's loss + G's, step by step.
    assert math.isclose(steps[-1]["losses"][-1], d[-1] + g[-1], rel_tol=1e-5)
    assert records[-1]["type"] == "Finished"
    # The checkpoint holds both optimizers: D's as the Trainer's, G's as the plugin's.
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["optimizer"]["state"] and ckpt["step_plugin"]["g_optimizer"]["state"]


def _train(epochs: int, events: list, **kw) -> Trainer:
    kw.setdefault("device", "cpu")  # bitwise resumes: not CUDA on a GPU box
    cfg = TrainConfig("gan", epochs=epochs, batch_size=32, seed=2, threads=1,
                      report_interval_s=0.0, **kw)
    trainer = Trainer(cfg, events.append, dataset=blobs_images(256, 64))
    result = trainer.run()
    assert isinstance(result, ev.Finished), getattr(result, "message", result)
    return trainer


def test_generated_grid_after_each_epoch_changes_as_g_learns():
    events: list[ev.Event] = []
    _train(3, events, save=False, val_predictions=True)
    grids = [e for e in events if isinstance(e, ev.GeneratedSamples)]
    assert [g.epoch for g in grids] == [0, 1, 2]
    for g in grids:
        images = torch.tensor(g.images)  # (16, 28, 28) gray levels
        assert images.shape == (16, 28, 28)
        assert 0 <= images.min() and images.max() <= 1
    for before, after in zip(grids, grids[1:]):
        change = (torch.tensor(after.images) - torch.tensor(before.images)).abs().mean()
        assert change > 0.01, f"epoch {after.epoch}: the grid barely changed ({change:.4f})"


def test_both_optimizers_train_only_their_own_network():
    trainer = _train(1, [], save=False)
    gan, plugin = trainer.model, trainer.step_plugin
    d_params = {id(p) for p in gan.discriminator.parameters()}
    g_params = {id(p) for p in gan.generator.parameters()}
    assert {id(p) for group in trainer.optimizer.param_groups for p in group["params"]} \
        == d_params
    assert {id(p) for group in plugin.g_optimizer.param_groups for p in group["params"]} \
        == g_params


def test_discriminator_learns_to_tell_real_from_fake_early():
    # D's loss starts near 2·ln 2 (a coin flip on real and fake) and falls in the first steps.
    events: list[ev.Event] = []
    _train(2, events, save=False)
    d = [e.scalars["d_loss"] for e in events if isinstance(e, ev.StepMetrics)]  # every step
    assert abs(d[0] - 2 * math.log(2)) < 0.5
    assert sum(d[-4:]) / 4 < d[0]


def test_resume_after_one_epoch_is_bitwise_identical_to_two_straight(tmp_path):
    straight = _train(2, [], run_dir=str(tmp_path / "a"))
    _train(1, [], run_dir=str(tmp_path / "b"))
    resumed = Trainer(TrainConfig("gan", epochs=2, device="cpu"), dataset=blobs_images(256, 64),
                      resume_from=tmp_path / "b")
    result = resumed.run()
    assert result.status == "finished" and result.step == 16
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    sa, sb = (t.step_plugin.g_optimizer.state_dict()["state"] for t in (straight, resumed))
    for k in sa:
        assert torch.equal(sa[k]["exp_avg"], sb[k]["exp_avg"])


# ---- the app -----------------------------------------------------------------------------------
async def test_app_trains_the_gan_with_d_and_g_curves_and_the_generated_grid(tmp_path):
    from tui_nn.tui.app import make_app
    from tui_nn.tui.widgets.curves import LossPlot

    from test_tui_insight import ready, text_of, wait_for

    app = make_app(model="gan", dataset=blobs_images(256, 64),
                   train_options={"epochs": 2, "batch_size": 32, "report_interval_s": 0.0,
                                  "runs_root": str(tmp_path)})
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot)
        main = app.main
        await pilot.press("s")
        await wait_for(pilot, lambda: main.run_state == "finished", timeout=90, what="finish")
        snap = main.bridge.history.snapshot(max_points=200)
        assert set(snap.extra) == {"d_loss", "g_loss"}
        assert [p.x for p in snap.extra["d_loss"]] == [p.x for p in snap.train]  # every step
        await pilot.press("2")  # the Train tab, where the curves are
        await pilot.pause(0.2)
        legend = main.query_one(LossPlot).render().plain  # the legend names both curves
        assert "d_loss" in legend and "g_loss" in legend
        main.action_show_insight("classes")
        await pilot.pause(0.3)
        view = main.query_one("#classes-view")
        assert view.event.epoch == 1 and len(view.event.images) == 16
        assert "Generated images after epoch 2" in str(
            main.query_one("#classes-head").render())
        grid = text_of(app, "#samples")
        assert grid.count("▀") == 16 * 28 * 14  # 16 images of 28×28 in half blocks


# ---- watch ---------------------------------------------------------------------------------------
async def test_watch_draws_the_d_and_g_curves_of_a_gan_run(tmp_path):
    from test_watch import no_nvml
    from tui_nn.tui.screens.watch import WatchApp
    from tui_nn.tui.widgets.curves import LossPlot

    run = tmp_path / "run"
    _train(1, [], run_dir=str(run))
    app = WatchApp(run, gpu_reader=no_nvml)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.watch_screen
        deadline = time.monotonic() + 20
        while screen.status != "finished" and time.monotonic() < deadline:
            await pilot.pause(0.05)
        assert screen.status == "finished"
        snap = screen.history.snapshot(max_points=200)
        assert set(snap.extra) == {"d_loss", "g_loss"}
        assert len(snap.extra["g_loss"]) == 256 // 32
        screen.query_one("#curves").redraw()
        await pilot.pause(0.3)
        legend = screen.query_one(LossPlot).render().plain
        assert "d_loss" in legend and "g_loss" in legend


def test_extra_scalars_from_a_file_are_data():
    from tui_nn.tui.history import MAX_EXTRA_CURVES, extra_scalars

    assert extra_scalars({"d_loss": 1, "g_loss": 0.5}) == {"d_loss": 1.0, "g_loss": 0.5}
    hostile = {"\x1b]0;pwned\x07[b]x[/b]": 1.0, "list": [1.0], "text": "1", "flag": True,
               "huge": 10 ** 400}
    # Names are made inert, and what is not a number dropped, where the record is decoded.
    from tui_nn.engine import schema
    step = {"type": "StepMetrics", "epoch": 0, "step": 1, "first_step": 1, "losses": [1.0],
            "lr": 0.1, "samples_per_s": 1.0, "eta_s": None, "epoch_step": 1,
            "steps_per_epoch": 1, "total_steps": 1, "scalars": hostile}
    cleaned = extra_scalars(schema.decode(step).scalars)
    assert list(cleaned.values()) == [1.0]  # lists, strings, booleans, overflows dropped
    (name,) = cleaned
    assert "\x1b" not in name and "\x07" not in name
    assert extra_scalars("not a dict") == {} and extra_scalars(None) == {}
    assert len(extra_scalars({f"s{i}": float(i) for i in range(10)})) == MAX_EXTRA_CURVES


# ---- examples/gan_loop.py: the same GAN as a hand-written loop on tui_nn.Run ---------------------
def test_gan_loop_example_writes_a_run_with_d_and_g_curves(tmp_path):
    from tui_nn.runs.history import load_history

    run = tmp_path / "loop"
    example = Path(__file__).parent.parent / "examples" / "gan_loop.py"
    res = subprocess.run([sys.executable, str(example), "--epochs", "1", "--limit", "256",
                          "--run-dir", str(run)], capture_output=True, text=True, env=ENV,
                         timeout=180)
    assert res.returncode == 0, res.stderr
    assert "▀" in res.stdout or "▄" in res.stdout  # the generated grid in half blocks
    records = _records(run)
    steps = [r for r in records if r["type"] == "StepMetrics"]
    assert sum(len(r["losses"]) for r in steps) == 256 // 64
    assert all(set(r["scalars"]) == {"d_loss", "g_loss"} for r in steps)
    assert all(math.isfinite(v) for r in steps for v in r["scalars"].values())
    assert records[-1]["type"] == "Finished" and records[-1]["status"] == "finished"
    assert (run / "ckpt.pt").is_file()
    assert len(load_history(run).epochs) == 1  # what runs/watch read


def test_stop_mid_epoch_and_resume_match_an_uninterrupted_run(tmp_path):
    straight = _train(2, [], save=False)

    def stop_at_step_3(event: ev.Event) -> None:
        if isinstance(event, ev.StepMetrics) and event.step >= 3:
            trainer.stop()

    trainer = Trainer(TrainConfig("gan", epochs=2, batch_size=32, seed=2, threads=1,
                                  report_interval_s=0.0, device="cpu",
                                  run_dir=str(tmp_path / "r")),
                      stop_at_step_3, dataset=blobs_images(256, 64))
    assert trainer.run().step == 3
    resumed = Trainer(TrainConfig("gan", device="cpu"), dataset=blobs_images(256, 64),
                      resume_from=tmp_path / "r")
    assert resumed.run().step == 16
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
