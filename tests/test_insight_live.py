"""The engine hooks behind the live insight views: gradient flow at report time, the live fit
line, and the classifier's predictions from the epoch's own validation pass. They must only
read the run (same losses with them on), stay off by default, and stay out of metrics.jsonl."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from tui_nn.data.base import Dataset
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.insight.gradflow import deep_mlp, synthetic_batch

from helpers import blobs_images, line_dataset


def run(config: TrainConfig, **kwargs) -> list[ev.Event]:
    events: list[ev.Event] = []
    result = Trainer(config, events.append, **kwargs).run()
    assert isinstance(result, ev.Finished), result
    return events


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def cnn_config(**kw) -> TrainConfig:
    # threads=1: the automatic thread choice is timed, and results are bitwise equal only for
    # the same thread count. report_interval_s=0: every step is a report (and an observation).
    options = dict(epochs=2, batch_size=32, lr=0.05, save=False, threads=1,
                   report_interval_s=0.0)
    return TrainConfig("cnn", **{**options, **kw})


def test_hooks_are_off_by_default_and_do_not_change_the_losses():
    plain = run(cnn_config(), dataset=blobs_images(96, 40))
    assert not [e for e in plain if isinstance(e, ev.LIVE_ONLY)]
    looked = run(cnn_config(grad_flow=True, val_predictions=True), dataset=blobs_images(96, 40))
    losses = [x for e in of(plain, ev.StepMetrics) for x in e.losses]
    assert len(losses) == 6
    assert [x for e in of(looked, ev.StepMetrics) for x in e.losses] == losses  # bitwise
    assert ([e.val_loss for e in of(looked, ev.EpochMetrics)]
            == [e.val_loss for e in of(plain, ev.EpochMetrics)])
    flows = of(looked, ev.GradientFlow)
    assert [f.step for f in flows] == [1, 2, 3, 4, 5, 6]  # one per report, before the step
    snap = flows[0].snapshot
    assert snap.names == ["conv1", "conv2", "fc"]  # forward order
    assert all(g > 0 for g in snap.grad_norms)
    assert snap.lr == pytest.approx(0.05)


def test_gradients_are_read_at_report_time_only():
    events = run(replace(cnn_config(grad_flow=True), report_interval_s=3600.0, epochs=1),
                 dataset=blobs_images(96, 40))
    # No report falls due within an hour except the epoch's last step.
    assert [f.step for f in of(events, ev.GradientFlow)] == [3]


def test_a_deep_sigmoid_mlp_trained_by_the_engine_shows_vanishing_gradients():
    x, y = synthetic_batch(256, 32, seed=0)  # (256, 32), (256, 1)
    data = Dataset("sine", "regression", x, y, x[:64], y[:64], (32,))
    ratios = {}
    for act in ("sigmoid", "relu"):
        events = run(TrainConfig("mlp", dataset="sine", epochs=3, batch_size=64, lr=0.01,
                                 optimizer="sgd", save=False, threads=1, report_interval_s=0.0,
                                 grad_flow=True),
                     model=deep_mlp(act, depth=8, width=32), dataset=data)
        flows = of(events, ev.GradientFlow)
        assert len(flows) == 12
        last = flows[-1].snapshot
        assert last.names[0] == "fc1" and last.names[-1] == "fc8"
        ratios[act] = last.grad_norms[0] / last.grad_norms[-1]
        warnings = [w for f in flows for w in f.snapshot.warnings]
        if act == "sigmoid":
            assert any(w.startswith("fc1:") and "vanishing" in w for w in warnings)
        else:
            assert not warnings
    assert ratios["sigmoid"] < 1e-2  # orders of magnitude
    assert ratios["relu"] > 0.1


def test_the_fit_line_follows_the_model_as_it_trains():
    events: list[ev.Event] = []
    trainer = Trainer(TrainConfig("linear", epochs=30, lr=0.05, save=False, threads=1,
                                  report_interval_s=0.0, live_fit=True), events.append,
                      dataset=line_dataset())
    assert isinstance(trainer.run(), ev.Finished)
    fits = of(events, ev.FitUpdate)
    assert len(fits) == 30  # one step per epoch, each a report
    first, last = fits[0].snapshot, fits[-1].snapshot
    assert first.x == [1.0, 2.0, 3.0] and first.y == [2.0, 4.0, 6.0]
    assert first.line_y != last.line_y
    assert last.loss < first.loss
    # The line is the model's prediction after the last step: its slope is the weight w.
    slope = (last.line_y[-1] - last.line_y[0]) / (last.line_x[-1] - last.line_x[0])
    w = float(next(trainer.model.parameters()).detach().reshape(-1)[0])
    assert slope == pytest.approx(w, rel=1e-4) and 1.0 < w < 2.5  # on its way to 2


def test_live_fit_is_skipped_for_models_that_are_not_1d():
    events = run(cnn_config(live_fit=True, epochs=1), dataset=blobs_images(64, 20))
    assert not of(events, ev.FitUpdate)


def test_predictions_come_from_the_validation_pass_itself():
    data = blobs_images(96, 40)
    forwards = {"n": 0}

    def counting_trainer(**kw):
        from tui_nn.zoo import MODELS

        model = MODELS.get("cnn").build()
        model.register_forward_hook(lambda *a: forwards.__setitem__("n", forwards["n"] + 1))
        return model

    counts = []
    for on in (False, True):
        forwards["n"] = 0
        events = run(cnn_config(val_predictions=on), model=counting_trainer(), dataset=data)
        counts.append(forwards["n"])
    assert counts[0] == counts[1]  # no second pass over the validation set
    preds = of(events, ev.ValPredictions)
    epochs = of(events, ev.EpochMetrics)
    assert [p.epoch for p in preds] == [0, 1]
    for p, e in zip(preds, epochs):
        assert p.confusion.total == 40  # sums to the validation size
        assert p.confusion.accuracy == pytest.approx(e.value)
        assert len(p.samples) == 16
        wrong = [not s.correct for s in p.samples]
        assert wrong == sorted(wrong, reverse=True)  # misclassified first
        assert len(p.samples[0].image[0]) == 16  # shrunk for the message


def test_live_events_stay_out_of_metrics_jsonl(tmp_path):
    events = run(replace(cnn_config(grad_flow=True, val_predictions=True, epochs=1),
                         save=True, run_dir=str(tmp_path / "run"), tensorboard=False),
                 dataset=blobs_images(64, 20))
    assert of(events, ev.GradientFlow) and of(events, ev.ValPredictions)
    kinds = {json.loads(line)["type"]
             for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()}
    assert "StepMetrics" in kinds and not kinds & {"GradientFlow", "FitUpdate", "ValPredictions"}


def test_binary_predictions_give_a_two_by_two_matrix():
    from tui_nn.data import load_dataset

    events = run(TrainConfig("logistic", epochs=2, save=False, threads=1, val_predictions=True,
                             live_fit=True), dataset=load_dataset("hours"))
    preds = of(events, ev.ValPredictions)
    assert preds and len(preds[-1].confusion.counts) == 2
    assert preds[-1].samples == ()  # not images
    assert of(events, ev.FitUpdate)[-1].snapshot.task == "binary"


def test_one_step_epochs_are_not_observed_every_step_but_the_last_step_is():
    # linear on 3 points: every step ends an epoch, so every step is a report; the hooks still
    # run at most once per report interval (the measured cost otherwise: +124% run time).
    events = run(TrainConfig("linear", epochs=400, save=False, threads=1, grad_flow=True,
                             live_fit=True, val_predictions=True), dataset=line_dataset())
    flows, fits = of(events, ev.GradientFlow), of(events, ev.FitUpdate)
    assert len(of(events, ev.StepMetrics)) == 400
    assert 1 <= len(flows) < 100 and 1 <= len(fits) < 100
    assert flows[-1].step == 400 and fits[-1].step == 400  # the final state is always shown
    assert not of(events, ev.ValPredictions)  # regression: no classifier view
