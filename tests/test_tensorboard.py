"""TensorBoard event files, written live by the sink and replayed from metrics.jsonl, read back
with TensorBoard's own reader."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from helpers import line_dataset
from tui_nn.cli import app
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.engine import tensorboard as tb

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(s.step, s.value) for s in acc.Scalars(tag)]
            for tag in acc.Tags()["scalars"]}


def _train_with_sink(run_dir, epochs=4, **kw):
    sink = tb.make_tensorboard_sink(run_dir)
    assert isinstance(sink, tb.TensorBoardSink)
    events: list[ev.Event] = []

    def callback(event):
        events.append(event)
        sink(event)
    # The trainer's own sink is off: this one is the sink under test.
    cfg = TrainConfig("linear", epochs=epochs, run_dir=str(run_dir), report_interval_s=0.0,
                      tensorboard=False, **kw)
    result = Trainer(cfg, callback, dataset=line_dataset()).run()
    sink.close()
    return sink, events, result


def test_the_sink_writes_step_and_epoch_scalars(tmp_path):
    run = tmp_path / "run"
    sink, events, result = _train_with_sink(run)
    assert isinstance(result, ev.Finished) and sink.error is None
    assert list(run.glob("events.out.tfevents.*"))
    scalars = _scalars(run)
    steps = [e for e in events if isinstance(e, ev.StepMetrics)]
    epochs = [e for e in events if isinstance(e, ev.EpochMetrics)]
    expected_losses = [(e.first_step + i, v) for e in steps for i, v in enumerate(e.losses)]
    assert [s for s, _ in scalars["train/loss"]] == [s for s, _ in expected_losses]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([v for _, v in expected_losses])
    assert scalars["train/lr"] == [(e.step, pytest.approx(e.lr)) for e in steps]
    assert [s for s, _ in scalars["perf/samples_per_s"]] == [e.step for e in steps]
    assert scalars["val/loss"] == [(e.step, pytest.approx(e.val_loss)) for e in epochs]
    assert scalars["val/mse"] == [(e.step, pytest.approx(e.value)) for e in epochs]
    assert [s for s, _ in scalars["train/epoch_loss"]] == [e.step for e in epochs]


def test_the_sink_takes_the_run_directory_from_run_started(tmp_path):
    sink = tb.TensorBoardSink()
    run = tmp_path / "later"
    Trainer(TrainConfig("linear", epochs=2, run_dir=str(run), tensorboard=False), sink,
            dataset=line_dataset()).run()
    assert sink.error is None and "val/mse" in _scalars(run)


def test_a_sink_without_a_directory_writes_nothing(tmp_path):
    sink = tb.TensorBoardSink()
    Trainer(TrainConfig("linear", epochs=2, save=False), sink, dataset=line_dataset()).run()
    sink.close()
    assert sink.error is None


def test_a_failing_writer_disables_the_sink_without_stopping_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    sink = tb.TensorBoardSink(blocker / "run")  # cannot create a directory under a file
    sink(ev.EpochMetrics(epoch=0, step=1, train_loss=1.0, val_loss=1.0, metric="mse", value=1.0,
                         best_value=1.0, is_best=True, elapsed_s=1.0, epoch_time_s=1.0,
                         samples_per_s=1.0))
    assert sink.error and sink.error.startswith("TensorBoard logging stopped")
    sink(ev.StateChanged("paused"))  # ignored from now on, no raise
    sink.close()


def test_make_sink_is_none_without_tensorboard(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert tb.make_tensorboard_sink(tmp_path) is None


def test_replay_of_a_resumed_run_shows_each_step_once(tmp_path):
    run = tmp_path / "run"
    holder = {}

    def stop_early(event):
        if isinstance(event, ev.StepMetrics) and event.step >= 3:
            holder["t"].stop()
    cfg = TrainConfig("linear", epochs=6, run_dir=str(run), report_interval_s=0.0)
    holder["t"] = Trainer(cfg, stop_early, dataset=line_dataset())
    assert holder["t"].run().status == "stopped"
    # As if killed later than its last checkpoint: steps 4-5 were logged, then lost.
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    assert '"Finished"' in lines[-1]
    lost = ev.StepMetrics(epoch=3, step=5, first_step=4, losses=(999.0, 999.0), lr=0.01,
                          samples_per_s=1.0, eta_s=None, epoch_step=1, steps_per_epoch=1,
                          total_steps=6)
    metrics.write_text("".join(lines[:-1]) + json.dumps(lost.to_dict()) + "\n")
    assert Trainer(TrainConfig("linear", epochs=6), dataset=line_dataset(),
                   resume_from=run).run().status == "finished"
    out = tmp_path / "tb"
    count = tb.replay_metrics(run, out)
    assert count > 10
    scalars = _scalars(out)
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4, 5, 6]
    assert 999.0 not in [v for _, v in scalars["train/loss"]]
    assert [s for s, _ in scalars["val/mse"]] == [1, 2, 3, 4, 5, 6]


def test_cli_export_tensorboard(tmp_path):
    run = tmp_path / "run"
    Trainer(TrainConfig("linear", epochs=3, run_dir=str(run), tensorboard=False),
            dataset=line_dataset()).run()
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(run), "--tensorboard"])
    assert result.exit_code == 0, result.output
    assert [s for s, _ in _scalars(run)["val/mse"]] == [1, 2, 3]
    again = runner.invoke(app, ["export", str(run), "--tensorboard"])
    assert again.exit_code == 1 and "already holds TensorBoard event files" in again.stderr
    elsewhere = runner.invoke(app, ["export", str(run), "--tensorboard", "--out",
                                    str(tmp_path / "tb")])
    assert elsewhere.exit_code == 0 and "val/mse" in _scalars(tmp_path / "tb" / "run")


def test_the_trainer_writes_tensorboard_events_itself(tmp_path):
    run = tmp_path / "run"
    Trainer(TrainConfig("linear", epochs=3, run_dir=str(run)), dataset=line_dataset()).run()
    assert [s for s, _ in _scalars(run)["val/mse"]] == [1, 2, 3]
