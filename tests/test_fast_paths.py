"""Every fast path of the engine trains the same model as the plain loop it replaces.

The reference is the seed notes' loop written out by hand: normalise on the host, index a batch,
forward, CrossEntropyLoss, backward, SGD step, read the loss every step. The engine instead keeps
the data on the device, normalises there once, slices batches from a randperm, reads losses back
in chunks, and may use channels_last, several CPU threads or torch.compile. Same seed, same batch
order: the per-step losses must agree. Autocast paths need CUDA and are skipped without it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import blobs_images
from tui_nn.engine import TrainConfig, Trainer
from tui_nn.engine import events as ev
from tui_nn.zoo import get_model_spec

EPOCHS, BATCH, SEED, LR = 2, 32, 5, 0.05


def plain_loop_losses(threads: int = 1) -> list[float]:
    ds = blobs_images()
    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = get_model_spec("cnn").build()
    mean, std = ds.mean[0], ds.std[0]
    x = (ds.train_x - mean) / std  # (N, 1, 28, 28)
    y = ds.train_y
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    criterion = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(SEED)
    losses = []
    for _ in range(EPOCHS):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), BATCH):
            idx = perm[i:i + BATCH]
            loss = criterion(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())  # the per-step host sync the engine avoids
    return losses


def engine_losses(**options) -> list[float]:
    events: list[ev.Event] = []
    options.setdefault("threads", 1)
    cfg = TrainConfig("cnn", epochs=EPOCHS, batch_size=BATCH, lr=LR, optimizer="sgd",
                      momentum=0.0, seed=SEED, save=False, device="cpu", **options)
    result = Trainer(cfg, events.append, dataset=blobs_images()).run()
    assert isinstance(result, ev.Finished), result
    return [loss for e in events if isinstance(e, ev.StepMetrics) for loss in e.losses]


@pytest.fixture(scope="module")
def reference() -> list[float]:
    before = torch.get_num_threads()
    try:
        return plain_loop_losses()
    finally:
        torch.set_num_threads(before)


def test_device_resident_batches_and_chunked_readback_match_the_plain_loop(reference):
    losses = engine_losses(report_interval_s=5.0)  # few, large chunks
    assert len(losses) == len(reference) == EPOCHS * 8
    assert losses == pytest.approx(reference, abs=1e-5)
    assert losses[-1] < 0.5 * losses[0]  # and it learned


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_optimizers_take_torchs_fused_kernel_where_there_is_one(name):
    """The engine's optimizers use torch's fused kernels (the reference loop above, with
    torch's default SGD, gets the same losses, so the update is the same); RMSprop has none."""
    from tui_nn.engine.optim import build_optimizer

    model = get_model_spec("mlp").build()
    opt = build_optimizer(model, TrainConfig("mlp", optimizer=name, lr=0.01))
    assert opt.param_groups[0].get("fused") is (None if name == "rmsprop" else True)
    frozen = nn.Linear(2, 2).requires_grad_(False)  # nothing to fuse: still an optimizer
    lone = nn.Sequential(frozen, nn.Linear(2, 1).to(torch.float64))
    assert build_optimizer(lone, TrainConfig("x", optimizer=name, lr=0.01)).param_groups


class FlattenCNN(nn.Module):
    """A CNN whose forward takes channels_last activations (flatten, not view)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 5)  # (B, 6, 24, 24)
        self.pool = nn.MaxPool2d(4)  # (B, 6, 6, 6)
        self.fc = nn.Linear(6 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.pool(self.conv(x))).flatten(1))  # (B, 216) -> (B, 10)


def test_channels_last_matches_the_default_layout():
    def losses(layout: str) -> list[float]:
        torch.manual_seed(SEED)
        model = FlattenCNN()
        events: list[ev.Event] = []
        cfg = TrainConfig("flatten-cnn", dataset="blobs", epochs=EPOCHS, batch_size=BATCH,
                          lr=LR, optimizer="sgd", momentum=0.0, seed=SEED, save=False,
                          device="cpu", threads=1, channels_last=layout)
        trainer = Trainer(cfg, events.append, model=model, dataset=blobs_images())
        assert isinstance(trainer.run(), ev.Finished)
        assert trainer.channels_last is (layout == "on")
        return [v for e in events if isinstance(e, ev.StepMetrics) for v in e.losses]

    assert losses("on") == pytest.approx(losses("off"), abs=1e-4)


def test_two_threads_match_one_within_float_tolerance(reference):
    if (torch.get_num_threads() or 1) < 2 and torch.get_num_interop_threads() < 2:
        pytest.skip("one CPU")
    assert engine_losses(threads=2) == pytest.approx(reference, abs=1e-4)


@pytest.mark.slow
def test_torch_compile_matches_the_plain_loop(reference):
    """Inductor on the CPU (needs a C compiler; about a minute to compile here)."""
    import shutil

    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("torch.compile on the CPU needs a C compiler")
    assert engine_losses(compile=True) == pytest.approx(reference, abs=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="autocast paths need CUDA")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_autocast_stays_close_to_fp32_on_cuda(amp):
    def losses(amp_mode: str) -> list[float]:
        events: list[ev.Event] = []
        cfg = TrainConfig("cnn", epochs=EPOCHS, batch_size=BATCH, lr=LR, optimizer="sgd",
                          momentum=0.0, seed=SEED, save=False, device="cuda", amp=amp_mode)
        assert isinstance(Trainer(cfg, events.append, dataset=blobs_images()).run(), ev.Finished)
        return [v for e in events if isinstance(e, ev.StepMetrics) for v in e.losses]

    full, mixed = losses("off"), losses(amp)
    assert mixed == pytest.approx(full, rel=0.05, abs=0.02)


class ViewAfterConv(nn.Module):
    """The seeds' style: x.view(B, -1) after a conv, which channels_last activations break."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 5)  # (B, 4, 24, 24)
        self.fc = nn.Linear(4 * 24 * 24, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv(x))
        return self.fc(x.view(x.size(0), -1))


def test_channels_last_on_with_a_view_model_says_what_to_change():
    cfg = TrainConfig("view-model", dataset="blobs", epochs=1, save=False, device="cpu",
                      channels_last="on", threads=1)
    result = Trainer(cfg, model=ViewAfterConv(), dataset=blobs_images()).run()
    assert isinstance(result, ev.Failed) and result.kind == "shape"
    assert "--channels-last off" in result.message and "reshape" in result.message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="channels_last auto is CUDA-only")
def test_channels_last_auto_falls_back_for_a_view_model_on_cuda():
    cfg = TrainConfig("view-model", dataset="blobs", epochs=1, save=False, device="cuda")
    trainer = Trainer(cfg, model=ViewAfterConv(), dataset=blobs_images())
    assert isinstance(trainer.run(), ev.Finished)
    assert trainer.channels_last is False
