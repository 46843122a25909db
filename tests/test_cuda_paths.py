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
