"""The loop an expert writes by hand for MNIST-sized data: the bar tui-nn's engine must meet.

The whole set is decoded once into a normalised tensor on the device, batches are index slices
of a seeded `randperm`, plain SGD (lr 0.01, momentum 0.5: tui-nn's defaults for the image models),
the loss summed on the device (no per-step host sync), validation after every epoch in large
batches under `inference_mode`, default threads. Nothing else: no checkpoints, no events, no
logs. Timed from the first epoch to the last validation, as tui-nn is timed from RunStarted
(both after their data is decoded).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torchvision import datasets

MEAN, STD = 0.1307, 0.3081  # MNIST's, as the seed notes normalise
VAL_BATCH = 2048


def load_mnist_tensors(root: str, device: str) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, val_x, val_y) on device; x normalised float32 (N, 1, 28, 28)."""
    def prep(ds: datasets.MNIST) -> tuple[torch.Tensor, torch.Tensor]:
        x = ds.data.to(device).unsqueeze(1).float().div_(255).sub_(MEAN).div_(STD)  # (N, 1, 28, 28)
        return x, ds.targets.to(device)  # (N,) int64
    train = prep(datasets.MNIST(root=root, train=True, download=False))
    val = prep(datasets.MNIST(root=root, train=False, download=False))
    return (*train, *val)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.inference_mode()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for i in range(0, x.shape[0], VAL_BATCH):
        logits = model(x[i:i + VAL_BATCH])  # (B, 10)
        correct += (logits.argmax(1) == y[i:i + VAL_BATCH]).sum()
    return correct.item() / x.shape[0]


def train_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor,
                y: torch.Tensor, batch_size: int, order: torch.Generator) -> torch.Tensor:
    """One pass in random order; the summed loss stays on the device."""
    model.train()
    perm = torch.randperm(x.shape[0], generator=order).to(x.device)  # (N,)
    total = torch.zeros((), device=x.device)
    for i in range(0, x.shape[0], batch_size):
        idx = perm[i:i + batch_size]
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)  # (B, 1, 28, 28), (B,)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        total += loss.detach()
    return total


def train_expert(model: torch.nn.Module, root: str, epochs: int, batch_size: int = 64,
                 device: str = "cpu", lr: float = 0.01, momentum: float = 0.5,
                 seed: int = 0) -> dict:
    """Train on the MNIST IDX files under root; samples/s, seconds, last accuracy and the
    fastest epoch (training + validation). The batch order comes from a CPU generator seeded
    with `seed`, as tui-nn's does, so with the same initial weights both see the same batches
    and their accuracies can be compared run for run."""
    train_x, train_y, val_x, val_y = load_mnist_tensors(root, device)
    model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    steps = -(-train_x.shape[0] // batch_size)
    order = torch.Generator().manual_seed(seed)
    _sync(device)
    t0 = time.perf_counter()
    acc, loss, epoch_times = 0.0, float("nan"), []
    for _ in range(epochs):
        e0 = time.perf_counter()
        total = train_epoch(model, opt, train_x, train_y, batch_size, order)
        acc = evaluate(model, val_x, val_y)  # reads back: the epoch's work is done here
        loss = total.item() / steps
        epoch_times.append(time.perf_counter() - e0)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "samples_per_s": epochs * train_x.shape[0] / seconds,
            "accuracy": acc, "train_loss": loss, "best_epoch_s": min(epoch_times)}
