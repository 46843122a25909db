"""A run stopped mid-epoch and resumed reads like an uninterrupted one: the resumed epoch's
train_loss is the mean over all its steps (not only those after the resume), and every step
has one row in the export, also when the process was killed after a checkpoint whose last
steps had not been reported yet."""

from __future__ import annotations

import shutil

import pytest

torch = pytest.importorskip("torch")

from helpers import blobs_images  # noqa: E402
from tui_nn.engine import events as ev  # noqa: E402
from tui_nn.engine.config import TrainConfig  # noqa: E402
from tui_nn.engine.trainer import Trainer  # noqa: E402
from tui_nn.runs.export import export_csv  # noqa: E402
from tui_nn.runs.history import load_history  # noqa: E402

CFG = dict(epochs=2, batch_size=16, seed=1, threads=1)


def _epochs(run):
    return [(e.epoch, e.step, e.train_loss, e.val_loss) for e in load_history(run).epochs]


def test_a_run_stopped_mid_epoch_and_resumed_records_what_an_uninterrupted_one_does(tmp_path):
    straight = tmp_path / "straight"
    Trainer(TrainConfig("cnn", **CFG, run_dir=str(straight)), dataset=blobs_images()).run()

    def stop_at_step_5(event: ev.Event) -> None:
        if isinstance(event, ev.StepMetrics) and event.step >= 5:
            trainer.stop()

    run = tmp_path / "resumed"
    trainer = Trainer(TrainConfig("cnn", **CFG, report_interval_s=0.0, run_dir=str(run)),
                      stop_at_step_5, dataset=blobs_images())
    assert trainer.run().step == 5
    Trainer(TrainConfig("cnn"), dataset=blobs_images(), resume_from=run).run()
    a, b = _epochs(straight), _epochs(run)
    assert [x[:2] for x in a] == [x[:2] for x in b] == [(0, 16), (1, 32)]
    for x, y in zip(a, b):  # float32 sums, the same steps: equal to the last digits
        assert y[2] == pytest.approx(x[2], rel=1e-6) and y[3] == x[3]
    ea, eb = export_csv(straight, tmp_path / "ea"), export_csv(run, tmp_path / "eb")
    assert ea.n_steps == eb.n_steps == 32 and ea.n_epochs == eb.n_epochs == 2
    epochs_a = (tmp_path / "ea" / "metrics_epochs.csv").read_text().splitlines()
    epochs_b = (tmp_path / "eb" / "metrics_epochs.csv").read_text().splitlines()
    assert [r.split(",")[:3] for r in epochs_a] == [r.split(",")[:3] for r in epochs_b]


def test_a_checkpoint_never_holds_steps_that_metrics_jsonl_lacks(tmp_path):
    """A periodic checkpoint mid-window, then the process gone (kill -9: no more records):
    the resume starts after the checkpoint, so the steps before it must be recorded."""
    straight = tmp_path / "straight"
    Trainer(TrainConfig("cnn", **CFG, run_dir=str(straight)), dataset=blobs_images()).run()
    run = tmp_path / "killed"

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.CheckpointSaved) and event.reason == "periodic":
            shutil.copy(run / "last.pt", tmp_path / "kept.pt")
            shutil.copy(run / "metrics.jsonl", tmp_path / "kept.jsonl")
            trainer.stop()

    # Reports every hour: the 3 steps before the periodic checkpoint are all unreported.
    trainer = Trainer(TrainConfig("cnn", **CFG, report_interval_s=3600.0,
                                  checkpoint_every_steps=3, run_dir=str(run)),
                      on_event, dataset=blobs_images())
    trainer.run()
    assert torch.load(tmp_path / "kept.pt", weights_only=False)["step"] == 3
    # What a kill -9 right after the checkpoint leaves: that last.pt and the records so far.
    shutil.copy(tmp_path / "kept.pt", run / "last.pt")
    shutil.copy(tmp_path / "kept.jsonl", run / "metrics.jsonl")
    Trainer(TrainConfig("cnn"), dataset=blobs_images(), resume_from=run).run()
    a, b = load_history(straight), load_history(run)
    assert list(b.steps) == list(a.steps) == list(range(1, 33))
    assert [e.train_loss for e in b.epochs] == pytest.approx(
        [e.train_loss for e in a.epochs], rel=1e-6)


def test_a_gan_resumed_mid_epoch_keeps_its_epoch_means_of_d_and_g(tmp_path):
    """The step plugin's scalars (d_loss, g_loss) are epoch means too: they go on as well."""
    gan = dict(epochs=2, batch_size=32, seed=2, threads=1, report_interval_s=0.0)
    straight: list = []
    Trainer(TrainConfig("gan", **gan, save=False), straight.append,
            dataset=blobs_images(256, 64)).run()

    def stop_at_step_3(event: ev.Event) -> None:
        if isinstance(event, ev.StepMetrics) and event.step >= 3:
            trainer.stop()

    trainer = Trainer(TrainConfig("gan", **gan, run_dir=str(tmp_path / "r")), stop_at_step_3,
                      dataset=blobs_images(256, 64))
    trainer.run()
    resumed: list = []
    Trainer(TrainConfig("gan"), resumed.append, dataset=blobs_images(256, 64),
            resume_from=tmp_path / "r").run()
    a = [e for e in straight if isinstance(e, ev.EpochMetrics)]
    b = [e for e in resumed if isinstance(e, ev.EpochMetrics)]
    assert [e.epoch for e in b] == [0, 1] and set(b[0].scalars) == {"d_loss", "g_loss"}
    for x, y in zip(a, b):
        assert y.train_loss == pytest.approx(x.train_loss, rel=1e-6)
        assert y.scalars == pytest.approx(x.scalars, rel=1e-6)


@pytest.mark.parametrize("saved", [
    None, "abc", {"loss_sum": "1.0", "terms": 3, "time_s": 1.0},
    {"loss_sum": float("nan"), "terms": 3, "time_s": 1.0},
    {"loss_sum": 1.0, "terms": -3, "time_s": 1.0},
    {"loss_sum": 1.0, "terms": 1e300, "time_s": 1.0},
    {"loss_sum": 1.0, "terms": 3, "time_s": 1.0, "scalars": {"sums": {"d": "x"}, "n": 1}},
])
def test_epoch_sums_from_a_damaged_checkpoint_are_dropped_not_trusted(saved):
    from tui_nn.engine.checkpoint import _epoch_so_far_of
    assert _epoch_so_far_of(saved) is None


def test_epoch_sums_from_a_checkpoint_are_read_back():
    from tui_nn.engine.checkpoint import _epoch_so_far_of
    assert _epoch_so_far_of({"loss_sum": 2.5, "terms": 16, "time_s": 0.5}) == {
        "loss_sum": 2.5, "terms": 16, "time_s": 0.5, "scalars": {"sums": {}, "n": 0}}
