"""Loss and metric per task (see data.base.TASKS).

The loss functions take a *loss task*: the dataset's task, except that a binary model ending in
logits (no sigmoid) is "binary-logits" (see engine/model_fit.py, which decides it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tui_nn import fmt

# The torch.nn loss each loss task uses (README: Datasets).
LOSS_NAMES = {
    "regression": "MSELoss",
    "binary": "BCELoss",  # the model ends in a sigmoid: outputs are P(class 1)
    "binary-logits": "BCEWithLogitsLoss",  # the model ends in logits: the loss applies the sigmoid
    "classification": "CrossEntropyLoss",
    "sequence": "CrossEntropyLoss per time step",
}


def loss_sum(task: str, out: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed loss and the number of terms it sums (so means can be combined across batches)."""
    if task == "regression":
        return F.mse_loss(out, y, reduction="sum"), y.numel()
    if task == "binary":
        return F.binary_cross_entropy(out, y, reduction="sum"), y.numel()
    if task == "binary-logits":
        return F.binary_cross_entropy_with_logits(out, y, reduction="sum"), y.numel()
    if task == "classification":
        return F.cross_entropy(out, y, reduction="sum"), y.shape[0]
    if task == "sequence":
        # (B, T, V) logits against (B, T) ids: one term per time step.
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="sum"), \
            y.numel()
    raise ValueError(f"unknown task {task!r}")


def loss_mean(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if task == "regression":
        return F.mse_loss(out, y)
    if task == "binary":
        return F.binary_cross_entropy(out, y)
    if task == "binary-logits":
        return F.binary_cross_entropy_with_logits(out, y)
    if task == "classification":
        return F.cross_entropy(out, y)
    if task == "sequence":
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    raise ValueError(f"unknown task {task!r}")


def metric_name(task: str) -> str:
    return "mse" if task == "regression" else "accuracy"


def higher_is_better(task: str) -> bool:
    return fmt.higher_is_better(metric_name(task))


def correct_count(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of right answers in a batch (a device tensor: no sync)."""
    if task == "binary":
        return ((out > 0.5).to(y.dtype) == y).sum()
    if task == "binary-logits":
        return ((out > 0).to(y.dtype) == y).sum()  # sigmoid(z) > 0.5 exactly when z > 0
    if task == "classification":
        return (out.argmax(dim=1) == y).sum()
    if task == "sequence":
        return (out.argmax(dim=-1) == y).sum()
    raise ValueError(f"task {task!r} has no accuracy")


def probabilities(task: str, out: torch.Tensor) -> torch.Tensor:
    """A binary model's outputs as P(class 1), whichever way it ends; other tasks unchanged."""
    return torch.sigmoid(out) if task == "binary-logits" else out
