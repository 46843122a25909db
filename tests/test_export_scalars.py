"""`tui-nn export`: every scalar a run logged becomes a CSV column and a TensorBoard tag
(issue 31.3): a GAN's d_loss/g_loss, a Lightning or hand-written loop's train_mse."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from typer.testing import CliRunner

from helpers import blobs_images
from tui_nn.cli import app
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.engine.tensorboard import TensorBoardSink
from tui_nn.run import Run

runner = CliRunner()


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _export(run: Path) -> tuple[list[dict], list[dict]]:
    result = runner.invoke(app, ["export", str(run), "--csv"])
    assert result.exit_code == 0, result.output
    return _rows(run / "metrics_steps.csv"), _rows(run / "metrics_epochs.csv")


def test_a_gan_runs_d_and_g_losses_are_exported(tmp_path):
    run = tmp_path / "gan"
    cfg = TrainConfig("gan", epochs=1, batch_size=32, seed=2, threads=1, report_interval_s=0.0,
                      run_dir=str(run))
    assert isinstance(Trainer(cfg, dataset=blobs_images(128, 32)).run(), ev.Finished)
    steps, epochs = _export(run)
    assert list(steps[0]) == ["step", "epoch", "loss", "lr", "d_loss", "g_loss"]
    reported = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    by_step = {r["step"]: r["scalars"] for r in reported if r["type"] == "StepMetrics"}
    for row in steps:
        logged = by_step.get(int(row["step"]))
        if logged is None:  # not a report's last step: nothing was logged for it
            assert row["d_loss"] == row["g_loss"] == ""
        else:
            assert (float(row["d_loss"]), float(row["g_loss"])) == (logged["d_loss"],
                                                                     logged["g_loss"])
    assert list(epochs[0])[-2:] == ["d_loss", "g_loss"]
    assert all(math.isfinite(float(epochs[0][k])) for k in ("d_loss", "g_loss"))


def test_a_loops_own_scalars_are_exported(tmp_path):
    """What the Lightning callback writes: log_step(loss, train_mse=...), log_epoch(val_mse=...)."""
    run = tmp_path / "loop"
    with Run(run, metric="val_mse", epochs=2, steps_per_epoch=3, report_interval_s=0.0) as r:
        for epoch in range(2):
            for i in range(3):
                r.log_step(loss=1.0 / (1 + r.step), lr=0.1, train_mse=0.5 + i, loss_scale=2.0)
            r.log_epoch(val_loss=0.4, val_mse=0.3 - 0.1 * epoch, grad_norm=1.5)
    steps, epochs = _export(run)
    assert list(steps[0]) == ["step", "epoch", "loss", "lr", "train_mse", "loss_scale"]
    assert [float(s["train_mse"]) for s in steps] == [0.5, 1.5, 2.5] * 2
    assert list(epochs[0])[-1] == "grad_norm"
    assert [float(e["grad_norm"]) for e in epochs] == [1.5, 1.5]


def test_extra_keys_in_a_metrics_file_are_columns_and_names_are_data(tmp_path):
    run = tmp_path / "hand"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "m", "dataset": "d"}))
    recs = [
        {"type": "RunStarted", "start_step": 0, "start_epoch": 0, "metric": "mse"},
        _step(1, 2, {"loss": 9.0, "weird\x1b[31m": 1.0, "flag": True}),
        _step(3, 4, {"kl": 0.25}),
        {"type": "EpochMetrics", "epoch": 0, "step": 4, "train_loss": 1.0, "val_loss": 1.0,
         "metric": "mse", "value": 1.0, "best_value": 1.0, "scalars": {"value": 3.0}},
    ]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    steps, epochs = _export(run)
    # A name that is already a column keeps the column and comes in as scalars.NAME; a
    # control character is shown, never written raw; a non-number is not a scalar.
    header = list(steps[0])
    assert header[:5] == ["step", "epoch", "loss", "lr", "scalars.loss"]
    assert "kl" in header and "flag" not in header
    assert not any("\x1b" in h for h in header) and any("weird" in h for h in header)
    assert [s["kl"] for s in steps] == ["", "", "", "0.25"]
    assert [s["scalars.loss"] for s in steps] == ["", "9.0", "", ""]
    assert epochs[0]["scalars.value"] == "3.0" and epochs[0]["value"] == "1.0"


def _step(first: int, last: int, scalars: dict) -> dict:
    n = last - first + 1
    return {"type": "StepMetrics", "epoch": 0, "step": last, "first_step": first,
            "losses": [1.0] * n, "lr": 0.1, "samples_per_s": 1.0, "eta_s": None,
            "epoch_step": last, "steps_per_epoch": 4, "total_steps": 4, "scalars": scalars}


def test_every_scalar_becomes_a_tensorboard_tag():
    class Writer:
        def __init__(self):
            self.tags: dict[str, list] = {}

        def add_scalar(self, tag, value, step):
            self.tags.setdefault(tag, []).append((step, value))

        def flush(self):
            pass

        def close(self):
            pass

    sink = TensorBoardSink("unused")
    sink._writer = writer = Writer()
    sink(ev.StepMetrics(epoch=0, step=2, first_step=1, losses=(1.0, 2.0), lr=0.1,
                        samples_per_s=1.0, eta_s=None, epoch_step=2, steps_per_epoch=2,
                        total_steps=2, scalars={"d_loss": 0.7, "g_loss": 1.3}))
    sink(ev.EpochMetrics(epoch=0, step=2, train_loss=1.5, val_loss=1.0, metric="mse", value=1.0,
                         best_value=1.0, is_best=True, elapsed_s=1.0, epoch_time_s=1.0,
                         samples_per_s=1.0, scalars={"val_mse": 0.2}))
    assert sink.error is None
    assert writer.tags["step/d_loss"] == [(2, 0.7)] and writer.tags["step/g_loss"] == [(2, 1.3)]
    assert writer.tags["epoch/val_mse"] == [(2, 0.2)]
