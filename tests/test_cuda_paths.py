"""The CUDA paths of the engine, run on the CPU: the branch a GPU takes forced (the per-step
loss check off, as on CUDA), CUDA errors injected where they can be raised, the CUDA queries
monkeypatched. Each test here failed on the code before issue 32."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tui_nn.data.base import Dataset
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.engine.checkpoint import load_checkpoint


def _regression(n: int = 64) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, generator=g)
    return Dataset("line64", "regression", x, 2 * x, x[:16].clone(), 2 * x[:16], (1,))


@pytest.fixture
def gpu_style(monkeypatch):
    """The loop as it runs on a GPU: losses stay on the device until a report reads them."""
    monkeypatch.setattr(Trainer, "_check_each_step", property(lambda self: False))


class NanFrom(nn.Module):
    """A linear model whose output turns NaN from the n-th training forward after arm()."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.lin, self.n, self.calls, self.armed = nn.Linear(1, 1), n, 0, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        if self.armed and self.training:
            self.calls += 1
            if self.calls >= self.n:
                out = out * float("nan")
        return out


def test_a_save_between_two_reads_never_writes_nan_weights(tmp_path, gpu_style):
    """Finding 1: NaN from step 3, a save every 3 steps, no report before the epoch ends."""
    model, events = NanFrom(3), []

    def on_event(event):
        events.append(event)
        if isinstance(event, ev.RunStarted):
            model.armed = True

    result = Trainer(TrainConfig("linear", epochs=2, batch_size=4, lr=0.01,
                                 checkpoint_every_steps=3, report_interval_s=1000,
                                 run_dir=str(tmp_path / "r")),
                     on_event, model=model, dataset=_regression()).run()
    assert isinstance(result, ev.Failed) and result.kind == "nan", result
    assert "loss became nan at step 3 " in result.message
    ckpt = load_checkpoint(tmp_path / "r")
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    assert ckpt["step"] == 0 and "(step 0)" in result.message
    saved = [e.step for e in events if isinstance(e, ev.CheckpointSaved)]
    assert saved == [0]


def test_the_nan_message_names_the_step_the_loss_went_nan(tmp_path, gpu_style):
    """Read at the epoch's report (step 16), the NaN is named by its own step (5)."""
    model = NanFrom(5)
    result = Trainer(TrainConfig("linear", epochs=1, batch_size=4, lr=0.01,
                                 report_interval_s=1000, save=False),
                     lambda e: setattr(model, "armed", model.armed or
                                       isinstance(e, ev.RunStarted)),
                     model=model, dataset=_regression()).run()
    assert isinstance(result, ev.Failed) and "at step 5 " in result.message, result


# ---- out of memory (finding 2) ------------------------------------------------------------------
def _oom_cnn(limit: int, log: list, arm_at_step: int | None = None):
    """cnn whose training forward above `limit` samples raises CUDA's OOM, after allocating a
    tensor the failed step holds (its weak reference is logged, to see when it is freed)."""
    import weakref

    from tui_nn.zoo import get_model_spec
    model = get_model_spec("cnn").build()
    real_forward = model.forward
    armed = {"on": arm_at_step is None}

    def forward(x):
        if armed["on"] and model.training and x.shape[0] > limit:
            held = torch.ones(1000, 1000)  # (1000, 1000): the failed step's activations
            log.append(("oom", weakref.ref(held)))
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if armed["on"] and model.training:
            import sys
            dead = all(r() is None for kind, r in log if kind == "oom")
            log.append(("probe", x.shape[0], dead, sys.exc_info()[0]))
        return real_forward(x)

    def on_event(event):
        log.append(("event", event))
        if isinstance(event, ev.StepMetrics) and event.step == arm_at_step:
            armed["on"] = True
    model.forward = forward
    return model, on_event


def test_oom_is_handled_outside_the_except_block_and_saves_before_probing(tmp_path):
    from helpers import blobs_images
    log: list = []
    model, on_event = _oom_cnn(16, log, arm_at_step=3)
    result = Trainer(TrainConfig("cnn", epochs=1, batch_size=32, report_interval_s=0.0,
                                 run_dir=str(tmp_path / "o")), on_event,
                     model=model, dataset=blobs_images()).run()
    assert isinstance(result, ev.Failed) and result.kind == "oom", result
    assert "--batch-size 16" in result.message and "saved in" in result.message
    probes = [entry for entry in log if entry[0] == "probe" and entry[1] <= 16]
    assert probes, log
    # The failed step's tensors are gone and no exception is being handled while probing.
    assert all(dead and exc is None for _, _, dead, exc in probes), probes
    # The run's own state is saved before the first probe moves BatchNorm and the RNG.
    first_probe = log.index(probes[0])
    stop = [i for i, e in enumerate(log) if e[0] == "event"
            and isinstance(e[1], ev.CheckpointSaved) and e[1].reason == "stop"]
    assert stop and stop[0] < first_probe
    assert load_checkpoint(tmp_path / "o")["step"] == 3


def test_oom_in_the_gan_probes_with_its_own_loss(monkeypatch):
    """The GAN's D outputs (B, 1): a classification-loss probe raised IndexError."""
    from helpers import blobs_images
    from tui_nn.zoo.gan import Discriminator
    disc_forward = Discriminator.forward

    def forward(self, x):
        if x.shape[0] > 8 and torch.is_grad_enabled():
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
        return disc_forward(self, x)
    monkeypatch.setattr(Discriminator, "forward", forward)
    result = Trainer(TrainConfig("gan", epochs=1, batch_size=32, save=False),
                     dataset=blobs_images(64, 16)).run()
    assert isinstance(result, ev.Failed) and result.kind == "oom", result
    assert "--batch-size 8" in result.message


def test_oom_under_ddp_never_probes_and_says_the_same_on_every_rank(monkeypatch):
    from helpers import blobs_images
    from tui_nn.engine import oom
    from tui_nn.engine.distributed import DistInfo
    trainer = Trainer(TrainConfig("cnn", epochs=1, batch_size=32, save=False),
                      dataset=blobs_images(64, 16))
    assert isinstance(trainer.run(), ev.Finished)
    monkeypatch.setattr(oom, "largest_batch_that_fits", lambda *a: pytest.fail("probed"))
    messages = set()
    for rank in (0, 1):
        trainer.dist = DistInfo(rank=rank, world_size=2, local_rank=rank)
        trainer.device = torch.device("cpu")
        messages.add(oom.out_of_memory_message(trainer))
    assert len(messages) == 1 and "--batch-size 16" in messages.pop()


# ---- amp auto, TF32, compile (findings 4 and 6) ---------------------------------------------------
@pytest.mark.parametrize("capability,want", [((7, 5), torch.float16), ((7, 0), torch.float16),
                                             ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_amp_auto_takes_bf16_only_where_the_runs_device_has_it_natively(
        monkeypatch, capability, want):
    """A T4 (7.5) or V100 (7.0) says yes to is_bf16_supported() (emulation); and the run's
    device (cuda:1 here) is asked, not the current one."""
    from tui_nn.engine.setup import amp_dtype
    asked = []
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.version, "hip", None)

    def capability_of(device=None):
        asked.append(device)
        return capability if device == torch.device("cuda", 1) else (9, 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    assert amp_dtype("auto", torch.device("cuda", 1)) is want
    assert asked == [torch.device("cuda", 1)]
    assert amp_dtype("fp16", torch.device("cuda", 1)) is torch.float16
    assert amp_dtype("auto", torch.device("cpu")) is None


def test_tf32_matmuls_are_enabled_on_cuda_only(monkeypatch):
    from helpers import blobs_images
    from tui_nn.engine import setup
    precision = []
    monkeypatch.setattr(torch, "set_float32_matmul_precision", precision.append)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(setup, "amp_dtype", lambda amp, device: None)
    trainer = Trainer(TrainConfig("cnn", save=False), dataset=blobs_images(8, 8))
    trainer.model = nn.Linear(1, 1)
    trainer.device = torch.device("cpu")
    setup._setup_speed(trainer)
    assert precision == []
    trainer.device = torch.device("cuda")
    setup._setup_speed(trainer)
    assert precision == ["high"]


def test_compile_never_recompiles_for_the_last_batch_and_validation_is_compiled(monkeypatch):
    """72 samples at batch 32: 32, 32, 8. One graph for training at 32, one for validation."""
    from helpers import blobs_images
    graphs = []
    real_compile = torch.compile

    def backend(gm, inputs):
        images = [tuple(i.shape) for i in inputs  # the batch, not the conv weights
                  if isinstance(i, torch.Tensor) and tuple(i.shape[1:]) == (1, 28, 28)]
        graphs.append((images, torch.is_inference_mode_enabled()))
        return gm.forward
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: real_compile(
        model, backend=backend))
    torch._dynamo.reset()
    try:
        result = Trainer(TrainConfig("cnn", epochs=2, batch_size=32, compile=True, save=False,
                                     threads=1), dataset=blobs_images(72, 40)).run()
    finally:
        torch._dynamo.reset()
    assert isinstance(result, ev.Finished), result
    assert [images for images, _ in graphs] == [[(32, 1, 28, 28)], [(40, 1, 28, 28)]], graphs
