"""CUDA out of memory in a training step: keep the work, then find a batch that fits.

Called after the `except` block that caught the error has ended: while it runs, the
traceback keeps the failed step's frames (its activations, its gradients) alive, and a batch
size measured beside them comes out several times too small."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from tui_nn.data import tasks
from tui_nn.engine.errors import TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.trainer import Trainer


def out_of_memory_message(t: "Trainer") -> str:
    """Save the run as it was before the failed step, then (one process only) probe for a
    batch size whose forward and backward fit. Under DDP nothing is probed: a rank probing
    alone would leave the others waiting in a collective, so every rank says the same."""
    bs = t.batch_size or t.config.batch_size or 0
    _release(t)
    saved = _save_the_run(t)  # first: the probes move BatchNorm statistics and the RNG
    if t.dist is not None and t.dist.enabled:
        return (f"out of memory at batch size {bs} ({t.dist.world_size} ranks): "
                f"try --batch-size {max(bs // 2, 1)}{saved}")
    if t.optimizer is None:  # before the first step: the model itself
        return f"out of memory on {t.device}: the model does not fit there{saved}"
    fits = largest_batch_that_fits(t, bs)
    hint = (f"try --batch-size {fits}" if fits else
            "even batch size 1 does not fit: use a smaller model or --amp bf16")
    return f"out of memory on {t.device} at batch size {bs}: {hint}{saved}"


def _save_the_run(t: "Trainer") -> str:
    st = t.state
    if t.run_dir is None or st.step == 0:
        return ""
    try:
        t.save(st.epoch, st.step_in_epoch, "stop")
    except TrainingError:  # a full disk or a NaN in the window: the last checkpoint stays
        return ""
    return f"; the run so far is saved in {t.run_dir.path}"


def largest_batch_that_fits(t: "Trainer", bs: int) -> int | None:
    candidate = bs // 2
    while candidate >= 1:
        if _fits(t, candidate):
            return candidate
        candidate //= 2
    return None


def _fits(t: "Trainer", n: int) -> bool:
    try:
        _probe(t, n)
        fits = True
    except torch.cuda.OutOfMemoryError:
        fits = False  # released below, once this except block (and its traceback) is gone
    _release(t)
    return fits


def _probe(t: "Trainer", n: int) -> None:
    """One forward and backward at batch n through the eager model (a compiled one would
    compile again for each size), with the run's autocast, and the run's own loss (a step
    plugin's for the GAN, whose D outputs (B, 1))."""
    idx = torch.arange(min(n, t.train_x.shape[0]), device=t.device)  # (n,)
    x, y = t.inputs(t.train_x.index_select(0, idx)), t.train_y.index_select(0, idx)
    if t.step_plugin is not None:
        loss = t.step_plugin.probe_loss(x, y)
    else:
        loss = tasks.loss_mean(t.loss_task, t._forward(t.model, x), y)
    loss.backward()


def _release(t: "Trainer") -> None:
    if t.model is not None:
        t.model.zero_grad(set_to_none=True)
    if t.device is not None and t.device.type == "cuda":
        torch.cuda.empty_cache()
