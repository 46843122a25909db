"""RunStarted carries what the trainer measured at setup (issue 17): written to metrics.jsonl,
read back by the one decoder, and optional, so records from before it still decode."""

from __future__ import annotations

import json

from helpers import blobs_images
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.engine import schema
from tui_nn.engine.rundir import read_metrics

MEASURED = {"batch_size": 16, "saved_activation_bytes": 123456, "rss_bytes": 987654321}


def _started(**extra) -> ev.RunStarted:
    return ev.RunStarted(
        run_dir=None, model="cnn", dataset="blobs", device="cpu", device_name="CPU",
        task="classification", metric="accuracy", n_train=64, n_val=16, epochs=1,
        batch_size=16, steps_per_epoch=4, total_steps=4, parameters=8490, **extra)


def test_round_trip_with_the_measured_memory():
    record = json.loads(json.dumps(_started(memory_measured=MEASURED).to_dict()))
    event = schema.decode(record)
    assert isinstance(event, ev.RunStarted)
    assert event.memory_measured == MEASURED


def test_an_old_record_without_it_still_decodes():
    record = _started().to_dict()
    del record["memory_measured"]
    event = schema.decode(json.loads(json.dumps(record)))
    assert isinstance(event, ev.RunStarted) and event.memory_measured is None
    assert event.model == "cnn"


def test_a_record_with_something_else_there_is_skipped():
    record = _started().to_dict()
    record["memory_measured"] = "409 KiB"  # a string from a file is not the dict views read
    assert schema.decode(record) is None


def test_the_trainer_reports_what_it_measured(tmp_path):
    events: list[ev.Event] = []
    run = tmp_path / "run"
    Trainer(TrainConfig("cnn", epochs=1, batch_size=16, run_dir=str(run)), events.append,
            dataset=blobs_images(n_train=64, n_val=16)).run()
    started = events[0]
    assert isinstance(started, ev.RunStarted)
    measured = started.memory_measured
    assert measured["batch_size"] == 16 and measured["saved_activation_bytes"] > 0
    assert measured == json.loads((run / "config.json").read_text())["memory_measured"]
    assert read_metrics(run / "metrics.jsonl")[0]["memory_measured"] == measured


def test_the_measurement_counts_the_batch_not_the_whole_target_set():
    """The loss saves its target: a view of train_y would count every label of the set."""
    from tui_nn.shapes import inspect_model
    from tui_nn.shapes.memory import MemoryRequest
    from tui_nn.zoo import get_model_spec

    events: list[ev.Event] = []
    Trainer(TrainConfig("cnn", epochs=1, batch_size=16, save=False), events.append,
            dataset=blobs_images(n_train=2048, n_val=16)).run()
    measured = events[0].memory_measured["saved_activation_bytes"]
    predicted = inspect_model(get_model_spec("cnn").build(), [(1, 28, 28)],
                              memory=MemoryRequest(batch_size=16)).memory.activations
    # On top of the model's forward, cross-entropy saves its log-softmax (16 × 10 float32)
    # its 16 int64 targets and a scalar or two; all 2048 labels would be 16 kB.
    assert 0 <= measured - predicted <= 16 * 10 * 4 + 16 * 8 + 64
