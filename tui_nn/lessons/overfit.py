"""Overfitting, shown: the same small CNN on a small training subset, trained plainly and with
each remedy (augmentation, dropout, weight decay), recording train and validation loss per
epoch. Without a remedy the validation loss turns up while the training loss keeps falling;
the remedies keep the two curves together.

The training loss of the augmented run is measured on augmented batches, as every framework
reports it; the validation set is never augmented.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import nn

from tui_nn.lessons import train_epochs

# (name, dropout p, weight decay, --augment spec)
VARIANTS: dict[str, tuple[float, float, str]] = {
    "plain": (0.0, 0.0, ""),
    "augment": (0.0, 0.0, "digits"),
    "dropout": (0.5, 0.0, ""),
    "weight decay": (0.0, 2e-2, ""),
}


@dataclass
class OverfitCurve:
    variant: str
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    @property
    def gap(self) -> float:
        """Validation minus training loss at the last epoch (nan before the first)."""
        return self.val_loss[-1] - self.train_loss[-1] if self.val_loss else float("nan")


class SmallCNN(nn.Module):
    """The seed's basic CNN with an optional dropout before its Linear(320, 10)."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(320, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.pool(self.conv1(x)))  # (B, 10, 12, 12)
        x = torch.relu(self.pool(self.conv2(x)))  # (B, 20, 4, 4)
        return self.fc(self.drop(x.flatten(1)))  # (B, 10)


def overfit_curves(variants: Sequence[str] = tuple(VARIANTS), *, n_train: int = 256,
                   n_val: int = 1000, epochs: int = 30, batch_size: int = 32, lr: float = 0.01,
                   seed: int = 0,
                   on_epoch: Callable[[OverfitCurve], None] | None = None,
                   stop: threading.Event | None = None) -> list[OverfitCurve]:
    """Train each variant from the same initial weights on the same n_train digits; on_epoch
    gets the variant's curve after each of its epochs (from this thread)."""
    from tui_nn.data.digits import load_digits
    from tui_nn.engine.config import TrainConfig

    data = load_digits(n_train=n_train, n_val=n_val, seed=seed)
    curves = []
    for name in variants:
        dropout, decay, augment = VARIANTS[name]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = SmallCNN(dropout)
        curve = OverfitCurve(name)

        def record(event: Any, curve: OverfitCurve = curve) -> None:
            curve.train_loss.append(event.train_loss)
            curve.val_loss.append(event.val_loss)
            curve.val_accuracy.append(event.value)
            if on_epoch is not None:
                on_epoch(curve)

        cfg = TrainConfig("overfit", epochs=epochs, batch_size=batch_size, lr=lr,
                          optimizer="momentum", momentum=0.9, weight_decay=decay,
                          augment=augment, seed=seed, save=False, device="cpu", threads=1)
        train_epochs(cfg, record, stop, f"overfitting lesson, {name}", model=model, dataset=data)
        curves.append(curve)
        if stop is not None and stop.is_set():
            break
    return curves


def gap_table(curves: Sequence[OverfitCurve]) -> list[str]:
    """One line per variant: final train/val loss, the gap, validation accuracy."""
    lines = []
    for c in curves:
        if not c.val_loss:
            continue
        lines.append(f"{c.variant:<13} train {c.train_loss[-1]:.3f}  val {c.val_loss[-1]:.3f}  "
                     f"gap {c.gap:+.3f}  val acc {c.val_accuracy[-1] * 100:.1f}%")
    return lines


if __name__ == "__main__":  # python -m tui_nn.lessons.overfit: the figures for the README
    t0 = time.monotonic()
    for line in gap_table(overfit_curves()):
        print(line)
    print(f"({time.monotonic() - t0:.0f} s)")
