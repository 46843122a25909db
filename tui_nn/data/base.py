"""The in-memory dataset every loader produces and the engine consumes.

Data that fits in memory is decoded once into tensors; the engine moves them to the training
device and batches them by index (``randperm`` slices), so no per-sample Python runs per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

# Tasks decide the loss and the metric the engine uses.
#   regression      float targets (N, k)            MSELoss, metric "mse"
#   binary          float targets in {0,1} (N, 1)   BCELoss on probabilities, metric "accuracy"
#   classification  int64 class ids (N,)            CrossEntropyLoss on logits, metric "accuracy"
#   sequence        int64 class ids (N, T)          CrossEntropyLoss per time step, metric "accuracy"
TASKS = ("regression", "binary", "classification", "sequence")


def printable(name: str) -> str:
    """A name read from a file or a folder, safe to show: control characters (an escape
    sequence in a class folder's name, say) become visible \\xNN escapes."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in name)


def unit_float(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels as float32 in [0, 1] (a new tensor, same shape and memory format)."""
    return pixels.float().div_(255)


class PixelNorm:
    """Images stored as uint8 (4× less memory than float, 4× fewer bytes to a GPU) become model
    inputs per batch, on their device: (x / 255 - mean) / std, the operations and their order
    of normalising a float copy of the whole set, so the values are the same."""

    def __init__(self, mean: tuple[float, ...] | None, std: tuple[float, ...] | None,
                 device: torch.device) -> None:
        self.mean = self.std = None
        if mean is not None and std is not None:
            self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)  # (1, C, 1, 1)
            self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = unit_float(x)  # (b, C, H, W) float32
        return out if self.mean is None else out.sub_(self.mean).div_(self.std)


class DataError(Exception):
    """A dataset cannot be loaded; the message says why and what to do (shown to users as is)."""


@dataclass
class Dataset:
    """A decoded dataset: train and validation tensors on the CPU plus what the engine needs.
    Image loaders asked for ``as_uint8`` keep the pixels as uint8 (N, C, H, W); mean and std are
    then still those of the [0, 1] floats (PixelNorm applies them per batch)."""

    name: str
    task: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    # Per-sample input shape, e.g. (1, 28, 28) for images, (8,) for the diabetes features.
    input_shape: tuple[int, ...]
    num_classes: int | None = None
    # Per-channel normalisation applied on the device, once, after the move (images only).
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    # Class names (classification) or the vocabulary (sequence: index -> character).
    labels: tuple[str, ...] | None = None
    description: str = ""
    # "path: why" of each image of a folder that could not be read and was left out.
    skipped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {TASKS}")

    @property
    def n_train(self) -> int:
        return int(self.train_x.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.val_x.shape[0])


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: what `tui-nn datasets` lists and how to load it."""

    name: str
    description: str
    task: str
    input_shape: tuple[int, ...]
    loader: Callable[..., Dataset] = field(repr=False, compare=False)
    embedded: bool = True  # generated in code, no download
