"""engine.controls.scale_lrs, the one lr scaling of the Trainer, tui_nn.Run and the framework
callbacks: after lr × F at any step, every later lr of the schedule is the unscaled one × F,
under each schedule the Trainer builds and the common torch ones."""

from __future__ import annotations

import math

import pytest

from tui_nn.engine.controls import scale_lrs

torch = pytest.importorskip("torch")
S = torch.optim.lr_scheduler
STEPS = 30


def _trainer_cosine(opt):  # what engine/optim.build_schedule makes for --schedule cosine
    return S.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, STEPS) / STEPS)))


SCHEDULES = {
    "step": lambda opt: S.StepLR(opt, step_size=7, gamma=0.1),
    "cosine": _trainer_cosine,
    "onecycle": lambda opt: S.OneCycleLR(opt, max_lr=0.1, total_steps=STEPS),
    "cosine-annealing": lambda opt: S.CosineAnnealingLR(opt, T_max=STEPS, eta_min=0.01),
    "warm-restarts": lambda opt: S.CosineAnnealingWarmRestarts(opt, T_0=8, eta_min=0.001),
    "cyclic": lambda opt: S.CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=5),
    "sequential": lambda opt: S.SequentialLR(opt, [S.LinearLR(opt, 0.1, total_iters=5),
                                                   S.ExponentialLR(opt, 0.9)], milestones=[5]),
}


def _lrs(schedule: str, scale_at: int | None, factor: float = 0.5) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1, momentum=0.9)
    sched = SCHEDULES[schedule](opt)
    lrs = []
    for step in range(STEPS):
        if step == scale_at:
            scale_lrs([opt], [sched], factor)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_a_scaled_lr_stays_scaled_for_the_rest_of_the_schedule(schedule):
    plain, scaled = _lrs(schedule, None), _lrs(schedule, 10)
    assert scaled[:10] == plain[:10]
    assert scaled[10:] == pytest.approx([0.5 * lr for lr in plain[10:]], rel=1e-9)


def test_the_trainer_scales_with_the_same_function(monkeypatch):
    from tui_nn.engine import recovery

    calls = []
    monkeypatch.setattr(recovery, "scale_lrs", lambda *a: calls.append(a))

    class T:
        optimizer, scheduler = object(), object()

    recovery.scale_lr_now(T, 0.25)
    assert calls == [([T.optimizer], [T.scheduler], 0.25)]
