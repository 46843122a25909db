"""What the Trainer does when a step goes wrong or is steered: a NaN/Inf loss (stop with the
last finite checkpoint kept, or roll back and pause) and lr scaling requested from another
thread. CUDA out of memory: oom.py.

Functions of a Trainer, kept apart so the training loop reads as a loop."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from tui_nn.engine import events as ev
from tui_nn.engine.checkpoint import load_checkpoint
from tui_nn.engine.controls import LR_KEYS, scale_lrs
from tui_nn.engine.errors import TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.trainer import Trainer


def stop_on_nan(trainer: "Trainer", epoch: int, step_in_epoch: int, value: float,
                step: int | None = None, what: str = "loss") -> None:
    """Headless: fail with advice. last.pt (there is always one: step 0 is saved) keeps the
    last checkpoint before the blow-up; the current weights are never saved over it (they
    are finite, but already diverged). step: the 1-based step whose loss was value (the
    step being taken when None)."""
    run_dir, st = trainer.run_dir, trainer.state
    kept = ""
    if run_dir is not None and run_dir.last_checkpoint.exists():
        kept = (f"; {run_dir.last_checkpoint} keeps the last checkpoint before it "
                f"(step {st.last_saved_step})")
    step = st.step + 1 if step is None else step
    lr = trainer.config.lr
    raise TrainingError(
        f"{what} became {value} at step {step} (epoch {epoch + 1}): "
        f"try a lower --lr (now {lr:g}; --lr {halved_lr(lr)} halves it) or --grad-clip 1.0"
        f"{kept}", "nan")


def halved_lr(lr: float) -> str:
    """The --lr that halves a run's lr on resume. Resume scales the checkpoint's lr by
    new/old --lr (engine/setup.py), so half the configured lr halves what the run had,
    whatever the schedule or the app's lr changes made of it since."""
    return f"{lr / 2:.4g}"


def check_finite_before_save(trainer: "Trainer") -> None:
    """The one rule for saving: nothing becomes a checkpoint before the losses since the last
    read are known finite. On a GPU they are read only at reports, so a save between two
    reads would otherwise write diverged weights over the last good last.pt. One host sync
    per save (never per step); it also covers the weights, which a finite loss can hide (the
    update of the last step). Raises TrainingError("nan") naming the step that went bad."""
    st = trainer.state
    losses = list(st.losses)
    flags = [torch.stack(losses).isfinite().all()] if losses else []
    if not trainer.dist.enabled:  # under DDP only rank 0 saves: it must not stop alone
        flags += [p.detach().isfinite().all() for p in trainer.model.parameters()]
    if not flags or bool(torch.stack(flags).all()):  # the one sync
        return
    values = torch.stack(losses).tolist() if losses else []
    bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
    if bad is not None:
        stop_on_nan(trainer, st.epoch, st.step_in_epoch, values[bad],
                    step=st.step - len(values) + 1 + bad)
    stop_on_nan(trainer, st.epoch, st.step_in_epoch, float("nan"), step=st.step,
                what="a weight")


def pause_on_nan(trainer: "Trainer", epoch: int, step_in_epoch: int, value: float) -> None:
    """on_nan == "pause" (the app): roll the weights, optimizer and schedule back to last.pt
    (the last state whose losses were all finite), keep the current lr, pause, and on resume
    go on from the next batch. Without a checkpoint to go back to, stop as headless does."""
    run_dir = trainer.run_dir
    if trainer.config.on_nan != "pause" or run_dir is None \
            or not run_dir.last_checkpoint.exists():
        stop_on_nan(trainer, epoch, step_in_epoch, value)
    ckpt = load_checkpoint(run_dir.last_checkpoint)
    rollback_weights(trainer, ckpt)
    lr = trainer.optimizer.param_groups[0]["lr"]
    step = trainer.state.step + 1
    trainer.pause()  # first: a consumer may resume from inside the event
    trainer.emit(ev.NonFiniteLoss(
        epoch=epoch, step=step, value=value, rolled_back_to=int(ckpt["step"]),
        message=f"loss became {value} at step {step} (epoch {epoch + 1}); rolled "
                f"back to the checkpoint of step {int(ckpt['step'])} and paused: lower the "
                f"lr (now {lr:.3g}) and resume, or stop"))
    trainer.wait_while_paused()
    apply_lr_factor(trainer)


def rollback_weights(trainer: "Trainer", ckpt: dict) -> None:
    """Model, optimizer, schedule and scaler from ckpt; the user's lr changes since stay."""
    opt, sched = trainer.optimizer, trainer.scheduler
    lrs = [{k: g[k] for k in LR_KEYS if k in g} for g in opt.param_groups]
    trainer.model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    for group, saved in zip(opt.param_groups, lrs):
        group.update(saved)
    if sched is not None and ckpt.get("scheduler"):
        base_lrs = getattr(sched, "base_lrs", None)
        sched.load_state_dict(ckpt["scheduler"])
        if base_lrs is not None:
            sched.base_lrs = base_lrs
    if trainer.scaler.is_enabled() and ckpt.get("scaler"):
        trainer.scaler.load_state_dict(ckpt["scaler"])


def apply_lr_factor(trainer: "Trainer") -> None:
    """Apply the scale_lr() requests gathered since the last step (a schedule keeps its shape)."""
    factor = trainer.take_lr_factor()
    if factor == 1.0:
        return
    scale_lr_now(trainer, factor)
    trainer.emit(ev.LrScaled(step=trainer.state.step, factor=factor,
                             lr=trainer.optimizer.param_groups[0]["lr"]))


def scale_lr_now(trainer: "Trainer", factor: float) -> None:
    scale_lrs([trainer.optimizer], [trainer.scheduler], factor)
