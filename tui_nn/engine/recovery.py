"""What the Trainer does when a step goes wrong or is steered: a NaN/Inf loss (stop with the
last finite checkpoint kept, or roll back and pause), CUDA out of memory (find a batch that
fits, keep the work), and lr scaling requested from another thread.

Functions of a Trainer, kept apart so the training loop reads as a loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from tui_nn.engine import events as ev
from tui_nn.data import tasks
from tui_nn.engine.checkpoint import load_checkpoint
from tui_nn.engine.controls import LR_KEYS, scale_lrs

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.trainer import Trainer


class TrainingError(Exception):
    """A failure with a user-facing message; kind is one of the Failed event kinds
    ("error", "nan", "oom", "data", "shape", "disk", "usage")."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


def stop_on_nan(trainer: "Trainer", epoch: int, step_in_epoch: int, value: float) -> None:
    """Headless: fail with advice. last.pt (there is always one: step 0 is saved) keeps the
    last checkpoint before the blow-up; the current weights are never saved over it (they
    are finite, but already diverged)."""
    run_dir, st = trainer.run_dir, trainer.state
    kept = ""
    if run_dir is not None and run_dir.last_checkpoint.exists():
        kept = (f"; {run_dir.last_checkpoint} keeps the last checkpoint before it "
                f"(step {st.last_saved_step})")
    raise TrainingError(
        f"loss became {value} at step {st.step + 1} (epoch {epoch + 1}): "
        f"try a lower --lr (now {trainer.config.lr}) or --grad-clip 1.0{kept}", "nan")


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


def out_of_memory_message(trainer: "Trainer") -> str:
    """Free what the failed step held, find a batch size whose forward+backward fits, and
    keep the work done so far."""
    bs = trainer.batch_size or trainer.config.batch_size or 0
    fits = None
    if trainer.optimizer is not None:
        trainer.optimizer.zero_grad(set_to_none=True)
        _empty_cache(trainer.device)
        fits = largest_batch_that_fits(trainer, bs)
    saved = ""
    st = trainer.state
    if trainer.run_dir is not None and st.step > 0:
        try:
            trainer.save(st.epoch, st.step_in_epoch, "stop")
            saved = f"; the run so far is saved in {trainer.run_dir.path}"
        except TrainingError:
            pass
    hint = (f"try --batch-size {fits}" if fits else
            "even batch size 1 does not fit: use a smaller model or --amp bf16")
    return f"out of memory on {trainer.device} at batch size {bs}: {hint}{saved}"


def largest_batch_that_fits(trainer: "Trainer", bs: int) -> int | None:
    n = trainer.train_x.shape[0]
    candidate = bs // 2
    while candidate >= 1:
        try:
            idx = torch.arange(min(candidate, n), device=trainer.device)
            out = trainer.forward_model(trainer.train_x.index_select(0, idx))
            tasks.loss_mean(trainer.loss_task, out.float(),
                            trainer.train_y.index_select(0, idx)).backward()
            trainer.optimizer.zero_grad(set_to_none=True)
            return candidate
        except torch.cuda.OutOfMemoryError:
            trainer.optimizer.zero_grad(set_to_none=True)
            _empty_cache(trainer.device)
            candidate //= 2
    return None


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
