"""Write MNIST-format IDX files (torchvision's DIR/MNIST/raw layout) from tensors."""

from __future__ import annotations

import struct
from pathlib import Path

import torch


def write_idx_images(path: Path, images: torch.Tensor) -> None:
    """images: (N, 28, 28) uint8."""
    n, h, w = images.shape
    with open(path, "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, n, h, w))
        f.write(images.contiguous().numpy().tobytes())


def write_idx_labels(path: Path, labels: torch.Tensor) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack(">II", 0x00000801, labels.numel()))
        f.write(labels.to(torch.uint8).numpy().tobytes())


def write_mnist(root: Path, train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor,
                val_y: torch.Tensor) -> Path:
    """x: (N, 1, 28, 28) floats in [0, 1] -> DIR/MNIST/raw/{train,t10k}-*-ubyte."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)

    def u8(x: torch.Tensor) -> torch.Tensor:
        return (x.squeeze(1) * 255).round().clamp(0, 255).to(torch.uint8)  # (N, 28, 28)

    write_idx_images(raw / "train-images-idx3-ubyte", u8(train_x))
    write_idx_labels(raw / "train-labels-idx1-ubyte", train_y)
    write_idx_images(raw / "t10k-images-idx3-ubyte", u8(val_x))
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", val_y)
    return root
