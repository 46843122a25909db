"""The training engine on tiny CPU problems: events, control from another thread, run
directories, checkpoints and resume, faults."""

from __future__ import annotations

import json
import pickle
import threading
import time

import pytest
import torch

from helpers import blobs_images, line_dataset
from tui_nn.engine import ConfigError, TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.engine.checkpoint import CheckpointError, load_checkpoint
from tui_nn.engine.rundir import read_metrics


def test_linear_learns_y_equals_2x_and_predicts_8():
    trainer = Trainer(TrainConfig("linear", save=False), dataset=line_dataset())
    result = trainer.run()
    assert isinstance(result, ev.Finished) and result.status == "finished"
    assert result.epochs_done == 2000
    assert trainer.model(torch.tensor([[4.0]])).item() == pytest.approx(8.0, abs=0.1)


def test_events_cover_every_step_in_order():
    events: list[ev.Event] = []
    Trainer(TrainConfig("cnn", epochs=2, batch_size=32, save=False, report_interval_s=0.0),
            events.append, dataset=blobs_images()).run()
    assert isinstance(events[0], ev.RunStarted) and isinstance(events[-1], ev.Finished)
    steps = [e for e in events if isinstance(e, ev.StepMetrics)]
    covered = [s for e in steps for s in range(e.first_step, e.step + 1)]
    assert covered == list(range(1, 2 * 8 + 1))  # 256 / 32 = 8 steps per epoch
    assert all(len(e.losses) == e.step - e.first_step + 1 for e in steps)
    epochs = [e for e in events if isinstance(e, ev.EpochMetrics)]
    assert [e.epoch for e in epochs] == [0, 1]
    assert epochs[-1].train_loss < epochs[0].train_loss


def test_cnn_learns_and_reports_accuracy():
    trainer = Trainer(TrainConfig("cnn", epochs=3, batch_size=32, lr=0.05, save=False),
                      dataset=blobs_images())
    result = trainer.run()
    assert result.metric == "accuracy"
    assert result.best_value > 0.9


def test_validation_batches_are_sized_for_the_device_and_never_change_the_result():
    from tui_nn.engine.validation import CPU_VAL_BATCH, GPU_VAL_BATCH, validation_batch_size

    auto = TrainConfig("cnn")
    assert validation_batch_size(auto, torch.device("cpu")) == CPU_VAL_BATCH < GPU_VAL_BATCH
    assert validation_batch_size(auto, torch.device("cuda")) == GPU_VAL_BATCH
    assert validation_batch_size(TrainConfig("cnn", val_batch_size=7), torch.device("cpu")) == 7

    def validation(val_batch_size: int) -> tuple[float, float]:
        trainer = Trainer(TrainConfig("cnn", epochs=1, batch_size=32, lr=0.05, save=False,
                                      seed=3, val_batch_size=val_batch_size),
                          dataset=blobs_images())
        assert isinstance(trainer.run(), ev.Finished)
        return trainer.history[-1].val_loss, trainer.history[-1].value

    (auto_loss, auto_acc), (loss, acc) = validation(0), validation(7)  # 7: many uneven batches
    assert auto_acc == acc
    assert auto_loss == pytest.approx(loss, rel=1e-5)


def test_run_directory_holds_config_metrics_and_loadable_checkpoints(tmp_path):
    run = tmp_path / "run"
    result = Trainer(TrainConfig("cnn", epochs=2, batch_size=64, run_dir=str(run)),
                     dataset=blobs_images()).run()
    assert result.run_dir == str(run)
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "cnn" and config["epochs"] == 2 and config["task"] == "classification"
    records = read_metrics(run / "metrics.jsonl")
    types = [r["type"] for r in records]
    assert types[0] == "RunStarted" and types[-1] == "Finished"
    assert types.count("EpochMetrics") == 2
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["step"] == 8
    best = torch.load(run / "best.pt", weights_only=True)
    assert set(best["model"]) == set(ckpt["model"])


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_resume_after_one_epoch_is_bitwise_identical_to_two_straight(tmp_path):
    # Bitwise reproducibility holds for a given seed and thread count: pin the count. On the
    # CPU: on a GPU box "auto" would pick CUDA, where cuDNN picks algorithms by timing.
    straight = Trainer(TrainConfig("cnn", epochs=2, batch_size=32, seed=3, threads=1,
                                   device="cpu", run_dir=str(tmp_path / "a")),
                       dataset=blobs_images())
    straight.run()
    first = Trainer(TrainConfig("cnn", epochs=1, batch_size=32, seed=3, threads=1,
                                device="cpu", run_dir=str(tmp_path / "b")),
                    dataset=blobs_images())
    first.run()
    resumed = Trainer(TrainConfig("cnn", epochs=2, device="cpu"), dataset=blobs_images(),
                      resume_from=tmp_path / "b")
    result = resumed.run()
    assert result.status == "finished" and result.step == 16
    for a, b in zip(_weights(straight.model), _weights(resumed.model)):
        assert torch.equal(a, b)


def test_stop_mid_epoch_checkpoints_the_exact_step_and_resume_matches(tmp_path):
    straight = Trainer(TrainConfig("cnn", epochs=2, batch_size=16, seed=1, save=False,
                                   threads=1, device="cpu"), dataset=blobs_images())
    straight.run()

    def stop_at_step_5(event: ev.Event) -> None:
        if isinstance(event, ev.StepMetrics) and event.step >= 5:
            trainer.stop()

    trainer = Trainer(TrainConfig("cnn", epochs=2, batch_size=16, seed=1, report_interval_s=0.0,
                                  threads=1, device="cpu", run_dir=str(tmp_path / "r")),
                      stop_at_step_5,
                      dataset=blobs_images())
    result = trainer.run()
    assert result.status == "stopped" and result.step == 5
    ckpt = load_checkpoint(tmp_path / "r")
    assert ckpt["step"] == 5 and ckpt["step_in_epoch"] == 5
    resumed = Trainer(TrainConfig("cnn", device="cpu"), dataset=blobs_images(),
                      resume_from=tmp_path / "r")
    assert resumed.run().step == 32
    for a, b in zip(_weights(straight.model), _weights(resumed.model)):
        assert torch.equal(a, b)


def test_pause_resume_and_stop_from_another_thread():
    events: list[ev.Event] = []
    paused = threading.Event()

    def on_event(event: ev.Event) -> None:
        events.append(event)
        if isinstance(event, ev.StateChanged) and event.state == "paused":
            paused.set()

    trainer = Trainer(TrainConfig("cnn", epochs=50, batch_size=8, save=False,
                                  report_interval_s=0.0), on_event, dataset=blobs_images())
    thread = threading.Thread(target=trainer.run)
    thread.start()
    trainer.pause()
    assert paused.wait(10), "trainer never paused"
    steps_at_pause = sum(isinstance(e, ev.StepMetrics) for e in events)
    threading.Event().wait(0.3)
    assert sum(isinstance(e, ev.StepMetrics) for e in events) == steps_at_pause
    trainer.resume()
    trainer.stop()
    thread.join(20)
    assert not thread.is_alive()
    assert isinstance(events[-1], ev.Finished) and events[-1].status == "stopped"
    assert any(isinstance(e, ev.StateChanged) and e.state == "running" for e in events)


def test_a_pause_is_left_out_of_the_epoch_time_and_the_throughput():
    """Paused for a second inside epoch 1: its epoch_time_s (and the samples/s of the epoch
    line) must count training only; the run's elapsed time is wall clock and keeps it."""
    events: list[ev.Event] = []
    trainer = None
    paused_at: list[float] = []

    def on_event(e: ev.Event) -> None:
        events.append(e)
        if isinstance(e, ev.StepMetrics) and e.epoch == 0 and not paused_at:
            paused_at.append(time.monotonic())
            trainer.pause()
            threading.Timer(1.0, trainer.resume).start()

    trainer = Trainer(TrainConfig("cnn", epochs=2, batch_size=16, save=False,
                                  report_interval_s=0.0), on_event, dataset=blobs_images())
    result = trainer.run()
    assert isinstance(result, ev.Finished) and result.status == "finished"
    first, second = [e for e in events if isinstance(e, ev.EpochMetrics)]
    assert first.elapsed_s >= 1.0  # the pause happened inside this epoch
    assert first.epoch_time_s < 0.5 + 2 * second.epoch_time_s, (first, second)
    resumed = next(i for i, e in enumerate(events)
                   if isinstance(e, ev.StateChanged) and e.state == "running")
    after = next(e for e in events[resumed:] if isinstance(e, ev.StepMetrics))
    assert 16 / after.samples_per_s < 0.5  # one batch over its step, not over pause + step


def test_nan_loss_fails_fast_with_advice_and_keeps_last_good_weights(tmp_path):
    result = Trainer(TrainConfig("linear", epochs=200, lr=10.0, run_dir=str(tmp_path / "n")),
                     dataset=line_dataset()).run()
    assert isinstance(result, ev.Failed) and result.kind == "nan"
    assert "lower --lr" in result.message and "--grad-clip" in result.message
    ckpt = load_checkpoint(tmp_path / "n")
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())


def test_nan_keeps_the_checkpoint_written_before_it(tmp_path):
    """A NaN must not overwrite last.pt (written while the losses were finite) with the
    diverged weights of the step that blew up."""
    events: list[ev.Event] = []
    result = Trainer(TrainConfig("linear", epochs=200, lr=10.0, checkpoint_every_steps=4,
                                 run_dir=str(tmp_path / "n")), events.append,
                     dataset=line_dataset()).run()
    assert isinstance(result, ev.Failed) and result.kind == "nan"
    saved = [e.step for e in events if isinstance(e, ev.CheckpointSaved) and e.reason != "best"]
    assert saved and all(step % 4 == 0 for step in saved)  # periodic only: no save at the NaN
    assert load_checkpoint(tmp_path / "n")["step"] == saved[-1] < result.step
    assert "keeps the last checkpoint before it" in result.message


def test_nan_after_a_resume_names_the_checkpoint_it_resumed_from(tmp_path):
    """A resumed run that blows up before its first save names the step of the checkpoint it
    resumed from (it used to say "(step None)")."""
    first = Trainer(TrainConfig("linear", epochs=2, lr=0.01, run_dir=str(tmp_path / "r")),
                    dataset=line_dataset()).run()
    assert isinstance(first, ev.Finished)
    saved = load_checkpoint(tmp_path / "r")["step"]
    result = Trainer(TrainConfig("linear", epochs=200, lr=10.0), dataset=line_dataset(),
                     resume_from=tmp_path / "r").run()
    assert isinstance(result, ev.Failed) and result.kind == "nan", result
    assert f"keeps the last checkpoint before it (step {saved})" in result.message


@pytest.mark.parametrize("field,value,fragment", [
    ("epochs", 0, "--epochs"), ("batch_size", 0, "--batch-size"), ("lr", 0.0, "--lr"),
    ("lr", -1.0, "--lr"), ("lr", float("nan"), "--lr"), ("optimizer", "sgdd", "optimizer"),
    ("schedule", "linearx", "schedule"), ("momentum", 1.5, "--momentum"),
    ("val_batch_size", -1, "validation batch size"),
])
def test_bad_settings_are_refused_with_a_clear_message(field, value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        TrainConfig("cnn", **{field: value}).validate()


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("schedule", ["none", "cosine"])
def test_every_optimizer_reduces_the_loss(optimizer, schedule):
    lr = 0.01 if optimizer in ("adam", "adamw", "rmsprop") else 0.05
    trainer = Trainer(TrainConfig("cnn", epochs=2, batch_size=32, lr=lr, optimizer=optimizer,
                                  schedule=schedule, save=False), dataset=blobs_images())
    trainer.run()
    assert trainer.history[-1].train_loss < trainer.history[0].train_loss or \
        trainer.history[-1].value > 0.5


def test_step_and_onecycle_schedules_change_the_lr():
    for schedule in ("step", "onecycle"):
        events: list[ev.Event] = []
        Trainer(TrainConfig("cnn", epochs=3, batch_size=64, schedule=schedule, save=False,
                            report_interval_s=0.0), events.append, dataset=blobs_images()).run()
        lrs = {round(e.lr, 8) for e in events if isinstance(e, ev.StepMetrics)}
        assert len(lrs) > 1, schedule


def test_malicious_checkpoint_is_refused(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"model": Boom()}, f)
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(path)


def test_checkpoint_of_another_model_is_refused_with_the_mismatches(tmp_path):
    Trainer(TrainConfig("cnn", epochs=1, run_dir=str(tmp_path / "c")), dataset=blobs_images()).run()
    from tui_nn.engine.checkpoint import check_state_dict_matches
    from tui_nn.zoo import get_model_spec
    ckpt = load_checkpoint(tmp_path / "c")
    with pytest.raises(CheckpointError, match="fc.weight"):
        check_state_dict_matches(get_model_spec("resnet").build(), ckpt["model"], "c/last.pt")


def test_unknown_model_fails_with_suggestion():
    result = Trainer(TrainConfig("cnnn", save=False), dataset=line_dataset()).run()
    assert isinstance(result, ev.Failed) and "Did you mean 'cnn'" in result.message


def test_out_of_memory_is_caught_and_a_fitting_batch_size_suggested(tmp_path):
    """CUDA OOM injected on the CPU: batches above 16 samples 'do not fit'."""
    from tui_nn.zoo import get_model_spec

    model = get_model_spec("cnn").build()
    real_forward = model.forward

    def forward(x):
        if x.shape[0] > 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_forward(x)

    model.forward = forward
    result = Trainer(TrainConfig("cnn", epochs=1, batch_size=64, run_dir=str(tmp_path / "o")),
                     model=model, dataset=blobs_images()).run()
    assert isinstance(result, ev.Failed) and result.kind == "oom"
    assert "batch size 64" in result.message and "--batch-size 16" in result.message


def test_out_of_memory_mid_run_keeps_the_work_done(tmp_path):
    from tui_nn.zoo import get_model_spec

    model = get_model_spec("cnn").build()
    real_forward = model.forward
    armed = {"on": False}

    def forward(x):
        if armed["on"] and x.shape[0] == 32:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        return real_forward(x)

    def arm_after_step_3(event):
        if isinstance(event, ev.StepMetrics) and event.step == 3:
            armed["on"] = True

    model.forward = forward
    result = Trainer(TrainConfig("cnn", epochs=1, batch_size=32, report_interval_s=0.0,
                                 run_dir=str(tmp_path / "o")), arm_after_step_3,
                     model=model, dataset=blobs_images()).run()
    assert result.kind == "oom" and "saved in" in result.message
    ckpt = load_checkpoint(tmp_path / "o")
    assert ckpt["step"] == 3 and ckpt["step_in_epoch"] == 3


def test_disk_full_during_checkpoint_is_reported_with_the_path(tmp_path, monkeypatch):
    import errno

    from tui_nn.engine import checkpoint as checkpoint_mod

    def full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_mod, "atomic_save", full)
    result = Trainer(TrainConfig("cnn", epochs=1, run_dir=str(tmp_path / "d")),
                     dataset=blobs_images()).run()
    assert isinstance(result, ev.Failed) and result.kind == "disk"
    assert str(tmp_path / "d") in result.message and "No space left" in result.message


def test_resume_keeps_the_thread_count_of_the_checkpoint(tmp_path):
    before = torch.get_num_threads()
    Trainer(TrainConfig("cnn", epochs=1, threads=1, device="cpu", run_dir=str(tmp_path / "t")),
            dataset=blobs_images()).run()
    assert load_checkpoint(tmp_path / "t")["threads"] == 1
    assert torch.get_num_threads() == before  # the trainer restores the process setting
    seen = []
    Trainer(TrainConfig("cnn", epochs=2, device="cpu"),
            lambda e: seen.append(torch.get_num_threads()),
            dataset=blobs_images(), resume_from=tmp_path / "t").run()
    assert set(seen) == {1}


def test_nan_can_pause_on_good_weights_then_continue_with_a_lower_lr(tmp_path):
    """on_nan="pause" (the app): at the first Inf loss the weights roll back to last.pt (here the
    one written at the start) and the run pauses; it continues once the lr is lowered. lr=10
    diverges on the seed's line, 10 × 0.001 does not."""
    events: list[ev.Event] = []

    def on_event(e: ev.Event) -> None:
        events.append(e)
        if isinstance(e, ev.NonFiniteLoss):  # what the app does when the user presses l, p
            trainer.scale_lr(0.001)
            trainer.resume()

    trainer = Trainer(TrainConfig("linear", epochs=300, lr=10.0, on_nan="pause",
                                  run_dir=str(tmp_path / "n")), on_event, dataset=line_dataset())
    result = trainer.run()
    nan = [e for e in events if isinstance(e, ev.NonFiniteLoss)]
    assert len(nan) == 1 and "rolled back to the checkpoint of step 0" in nan[0].message
    assert nan[0].rolled_back_to == 0 and nan[0].step > 1
    assert [e.reason for e in events if isinstance(e, ev.CheckpointSaved)][0] == "start"
    scaled = [e for e in events if isinstance(e, ev.LrScaled)]
    assert len(scaled) == 1 and scaled[0].lr == pytest.approx(0.01)
    assert isinstance(result, ev.Finished) and result.status == "finished", result
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_stopping_a_nan_paused_run_keeps_the_good_weights(tmp_path):
    events: list[ev.Event] = []

    def on_event(e: ev.Event) -> None:
        events.append(e)
        if isinstance(e, ev.NonFiniteLoss):
            trainer.stop()

    trainer = Trainer(TrainConfig("linear", epochs=300, lr=10.0, on_nan="pause",
                                  run_dir=str(tmp_path / "n")), on_event, dataset=line_dataset())
    result = trainer.run()
    assert isinstance(result, ev.Finished) and result.status == "stopped"
    ckpt = load_checkpoint(tmp_path / "n")
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    # No epoch line for the epoch whose only batch was skipped (it trained nothing).
    assert all(e.train_loss > 0 for e in events if isinstance(e, ev.EpochMetrics))


def test_scale_lr_rejects_nonsense_and_scales_a_schedule():
    trainer = Trainer(TrainConfig("linear", epochs=1, save=False), dataset=line_dataset())
    with pytest.raises(ValueError):
        trainer.scale_lr(0.0)
    events: list[ev.Event] = []

    def on_event(e: ev.Event) -> None:
        events.append(e)
        if isinstance(e, ev.RunStarted):
            trainer.scale_lr(0.5)

    trainer = Trainer(TrainConfig("diabetes", epochs=3, lr=0.1, optimizer="sgd",
                                  schedule="cosine", save=False), on_event)
    assert isinstance(trainer.run(), ev.Finished)
    scaled = [e.lr for e in events if isinstance(e, ev.LrScaled)]
    assert len(scaled) == 1 and scaled[0] == pytest.approx(0.05, rel=0.02)
    assert trainer.scheduler.base_lrs == [pytest.approx(0.05)]
