"""What a run does when a step goes wrong or is steered: a NaN/Inf loss (stop with the last
finite checkpoint kept, or roll back so the Trainer can pause) and lr scaling requested from
another thread. CUDA out of memory: oom.py.

Functions of what setup built (engine/prepared.py) and where the run is (engine/state.py),
kept apart so the training loop reads as a loop."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from tui_nn.engine import events as ev
from tui_nn.engine.checkpoint import load_checkpoint
from tui_nn.engine.controls import LR_KEYS, scale_lrs
from tui_nn.engine.errors import TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.prepared import Prepared
    from tui_nn.engine.state import RunState


def stop_on_nan(p: "Prepared", st: "RunState", epoch: int, value: float,
                step: int | None = None, what: str = "loss") -> None:
    """Headless: fail with advice. last.pt (there is always one: step 0 is saved) keeps the
    last checkpoint before the blow-up; the current weights are never saved over it (they
    are finite, but already diverged). step: the 1-based step whose loss was value (the
    step being taken when None)."""
    kept = ""
    if p.run_dir is not None and p.run_dir.last_checkpoint.exists():
        kept = (f"; {p.run_dir.last_checkpoint} keeps the last checkpoint before it "
                f"(step {st.last_saved_step})")
    step = st.step + 1 if step is None else step
    lr = p.config.lr
    raise TrainingError(
        f"{what} became {value} at step {step} (epoch {epoch + 1}): "
        f"try a lower --lr (now {lr:g}; --lr {halved_lr(lr)} halves it) or --grad-clip 1.0"
        f"{kept}", "nan")


def halved_lr(lr: float) -> str:
    """The --lr that halves a run's lr on resume. Resume scales the checkpoint's lr by
    new/old --lr (engine/setup.py), so half the configured lr halves what the run had,
    whatever the schedule or the app's lr changes made of it since."""
    return f"{lr / 2:.4g}"


def check_finite_before_save(p: "Prepared", st: "RunState") -> None:
    """The one rule for saving: nothing becomes a checkpoint before the losses since the last
    read are known finite. On a GPU they are read only at reports, so a save between two
    reads would otherwise write diverged weights over the last good last.pt. One host sync
    per save (never per step); it also covers the weights, which a finite loss can hide (the
    update of the last step). Raises TrainingError("nan") naming the step that went bad."""
    losses = list(st.losses)
    flags = [torch.stack(losses).isfinite().all()] if losses else []
    if not p.dist.enabled:  # under DDP only rank 0 saves: it must not stop alone
        flags += [w.detach().isfinite().all() for w in p.model.parameters()]
    if not flags or bool(torch.stack(flags).all()):  # the one sync
        return
    values = torch.stack(losses).tolist() if losses else []
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
    if bad is not None:
        stop_on_nan(p, st, st.epoch, values[bad], step=st.step - len(values) + 1 + bad)
    stop_on_nan(p, st, st.epoch, float("nan"), step=st.step, what="a weight")


def roll_back_on_nan(p: "Prepared", st: "RunState", epoch: int,
                     value: float) -> ev.NonFiniteLoss:
    """on_nan == "pause" (the app): roll the weights, optimizer and schedule back to last.pt
    (the last state whose losses were all finite), keeping the current lr; the Trainer then
    pauses, and on resume goes on from the next batch. Without a checkpoint to go back to,
    stop as headless does. Returns the event that says so."""
    run_dir = p.run_dir
    if p.config.on_nan != "pause" or run_dir is None or not run_dir.last_checkpoint.exists():
        stop_on_nan(p, st, epoch, value)
    ckpt = load_checkpoint(run_dir.last_checkpoint)
    rollback_weights(p, ckpt)
    lr = p.optimizer.param_groups[0]["lr"]
    step, back = st.step + 1, int(ckpt["step"])
    return ev.NonFiniteLoss(
        epoch=epoch, step=step, value=value, rolled_back_to=back,
        message=f"loss became {value} at step {step} (epoch {epoch + 1}); rolled "
                f"back to the checkpoint of step {back} and paused: lower the "
                f"lr (now {lr:.3g}) and resume, or stop")


def rollback_weights(p: "Prepared", ckpt: dict) -> None:
    """Model, optimizer, schedule and scaler from ckpt; the user's lr changes since stay."""
    opt, sched = p.optimizer, p.scheduler
    lrs = [{k: g[k] for k in LR_KEYS if k in g} for g in opt.param_groups]
    p.model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    for group, saved in zip(opt.param_groups, lrs):
        group.update(saved)
    if sched is not None and ckpt.get("scheduler"):
        base_lrs = getattr(sched, "base_lrs", None)
        sched.load_state_dict(ckpt["scheduler"])
        if base_lrs is not None:
            sched.base_lrs = base_lrs
    if p.scaler.is_enabled() and ckpt.get("scaler"):
        p.scaler.load_state_dict(ckpt["scaler"])


def apply_lr_factor(p: "Prepared", st: "RunState", factor: float) -> None:
    """Scale the lr by the scale_lr() requests gathered since the last step (a schedule keeps
    its shape), and say so."""
    if factor == 1.0:
        return
    scale_lr_now(p, factor)
    p.emit(ev.LrScaled(step=st.step, factor=factor, lr=p.optimizer.param_groups[0]["lr"]))


def scale_lr_now(p: "Prepared", factor: float) -> None:
    scale_lrs([p.optimizer], [p.scheduler], factor)
