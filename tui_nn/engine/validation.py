"""The validation pass: loss and metric over the validation set, in batches sized for the device, without
autograd, each rank scoring its shard under DDP. With the insight hooks' val_predictions on,
the same outputs also become the trainer's predictions (no second pass)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import torch

from tui_nn.data import tasks
from tui_nn.engine.distributed import all_sum
from tui_nn.engine.events import Notice
from tui_nn.engine.errors import TrainingError
from tui_nn.modelmode import in_mode

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.config import TrainConfig
    from tui_nn.engine.prepared import Prepared
    from tui_nn.engine.state import RunState


# On a CPU a validation batch beyond a few hundred samples falls out of the caches: resnet
# validates 2,048 digits in 219 ms at batch 256 and 383 ms at 2,048 (one thread; 128-512 alike,
# cnn 126 vs 182 ms). A GPU wants large batches.
CPU_VAL_BATCH, GPU_VAL_BATCH = 256, 2048


def validation_batch_size(cfg: "TrainConfig", device: torch.device) -> int:
    if cfg.val_batch_size:
        return cfg.val_batch_size
    return CPU_VAL_BATCH if device.type == "cpu" else GPU_VAL_BATCH


def evaluate(p: "Prepared", st: "RunState") -> tuple[float, float, str | None]:
    """(validation loss, metric value, decoded first sequence or None). Out of memory, the
    pass starts again at half its batch (kept for the rest of the run): --batch-size is the
    training batch and cannot help it. With the insight hooks collecting, the pass's
    predictions go to st.predictions."""
    vbs = st.val_batch_size or validation_batch_size(p.config, p.device)
    while True:
        try:
            return _evaluate(p, st, vbs)
        except torch.cuda.OutOfMemoryError:
            pass  # retried below, once this block has let go of the failed batch
        if p.device.type == "cuda":
            torch.cuda.empty_cache()
        if vbs == 1:
            raise TrainingError(f"validation ran out of memory on {p.device} even at batch "
                                "size 1", "oom")
        st.val_batch_size = vbs = vbs // 2
        p.emit(Notice(f"validation ran out of memory on {p.device} at batch size {vbs * 2}: "
                      f"it goes on at {vbs}"))


def _evaluate(p: "Prepared", st: "RunState", vbs: int) -> tuple[float, float, str | None]:
    task, model = p.task, p.model
    collect = p.insight is not None and p.insight.collect_now
    loss_total = torch.zeros((), device=p.device)
    correct = torch.zeros((), device=p.device, dtype=torch.long)
    terms, decoded, parts = 0, None, []
    if collect:
        from tui_nn.insight.classify import Predictions, predictions_from_output
    with in_mode(model, training=False), torch.inference_mode():
        for s, (xb, yb, full) in enumerate(_batches(p, vbs)):
            out = p.forward(p.eval_model if full and p.eval_model is not None else model, xb)
            ls, k = tasks.loss_sum(p.loss_task, out, yb)
            loss_total += ls
            terms += k
            if task != "regression":
                correct += tasks.correct_count(p.loss_task, out, yb)
            if collect:
                probs = tasks.probabilities(p.loss_task, out)
                parts.append(predictions_from_output(probs, yb))
            if task == "sequence" and s == 0 and p.dataset.labels:
                ids = out[0].argmax(dim=-1).tolist()
                decoded = "".join(p.dataset.labels[j] for j in ids)
    if collect:
        st.predictions = Predictions.cat(parts)
    return _reduce(p, loss_total, correct, terms) + (decoded,)


def _batches(p: "Prepared", vbs: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
    """(x, y, full) batches of this rank's shard (each rank scores its own; the sums are added
    up after); full: the batch has the size --compile's model was compiled for (a last,
    shorter batch runs eagerly)."""
    if p.stream is not None:
        for xb, yb in p.stream.val_batches(vbs):
            yield xb, yb, xb.shape[0] == vbs
        return
    val_x, val_y = p.val_x, p.val_y
    if p.dist.enabled:
        val_x = val_x.tensor_split(p.dist.world_size)[p.dist.rank]
        val_y = val_y.tensor_split(p.dist.world_size)[p.dist.rank]
    for s in range(0, val_x.shape[0], vbs):
        xb, yb = p.inputs(val_x[s:s + vbs]), val_y[s:s + vbs]  # (b, ...)
        yield xb, yb, xb.shape[0] == min(vbs, val_x.shape[0])


def _reduce(p: "Prepared", loss_total: torch.Tensor, correct: torch.Tensor,
            terms: int) -> tuple[float, float]:
    if p.dist.enabled:
        loss_total = all_sum(loss_total, p.dist)
        correct = all_sum(correct, p.dist)
        terms = int(all_sum(torch.tensor(terms, device=p.device), p.dist))
    val_loss = float(loss_total) / max(terms, 1)
    value = val_loss if p.task == "regression" else int(correct) / max(terms, 1)
    return val_loss, value
