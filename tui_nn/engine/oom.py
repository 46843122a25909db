"""CUDA out of memory in a training step: keep the work, then find a batch that fits.

Called after the `except` block that caught the error has ended: while it runs, the
traceback keeps the failed step's frames (its activations, its gradients) alive, and a batch
size measured beside them comes out several times too small."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch

from tui_nn.engine.errors import TrainingError

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.prepared import Prepared
    from tui_nn.engine.state import RunState

# The Trainer's save(epoch, step_in_epoch, reason): last.pt, once the losses are finite.
Save = Callable[[int, int, str], None]


def out_of_memory_message(p: "Prepared", st: "RunState", save: Save) -> str:
    """Save the run as it was before the failed step, then (one process only) probe for a
    batch size whose forward and backward fit. Under DDP nothing is probed: a rank probing
    alone would leave the others waiting in a collective, so every rank says the same."""
    bs = p.batch_size or p.config.batch_size or 0
    _release(p)
    saved = _save_the_run(p, st, save)  # first: the probes move BatchNorm statistics and the RNG
    if p.dist is not None and p.dist.enabled:
        return (f"out of memory at batch size {bs} ({p.dist.world_size} ranks): "
                f"try --batch-size {max(bs // 2, 1)}{saved}")
    if p.optimizer is None:  # before the first step: the model itself
        return f"out of memory on {p.device}: the model does not fit there{saved}"
    fits = largest_batch_that_fits(p, bs)
    hint = (f"try --batch-size {fits}" if fits else
            "even batch size 1 does not fit: use a smaller model or --amp bf16")
    return f"out of memory on {p.device} at batch size {bs}: {hint}{saved}"


def _save_the_run(p: "Prepared", st: "RunState", save: Save) -> str:
    if p.run_dir is None or st.step == 0:
        return ""
    try:
        save(st.epoch, st.step_in_epoch, "stop")
    except TrainingError:  # a full disk or a NaN in the window: the last checkpoint stays
        return ""
    return f"; the run so far is saved in {p.run_dir.path}"


def largest_batch_that_fits(p: "Prepared", bs: int) -> int | None:
    candidate = bs // 2
    while candidate >= 1:
        if _fits(p, candidate):
            return candidate
        candidate //= 2
    return None


def _fits(p: "Prepared", n: int) -> bool:
    try:
        _probe(p, n)
        fits = True
    except torch.cuda.OutOfMemoryError:
        fits = False  # released below, once this except block (and its traceback) is gone
    _release(p)
    return fits


def _probe(p: "Prepared", n: int) -> None:
    """One forward and backward at batch n through the eager model (a compiled one would
    compile again for each size), with the run's autocast, and the run's own loss (a step
    plugin's for the GAN, whose D outputs (B, 1))."""
    idx = torch.arange(min(n, p.train_x.shape[0]), device=p.device)  # (n,)
    x, y = p.inputs(p.train_x.index_select(0, idx)), p.train_y.index_select(0, idx)
    p.probe_loss(x, y).backward()


def _release(p: "Prepared") -> None:
    if p.model is not None:
        p.model.zero_grad(set_to_none=True)
    if p.device is not None and p.device.type == "cuda":
        torch.cuda.empty_cache()
