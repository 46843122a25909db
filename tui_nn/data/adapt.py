"""Fit a dataset to the per-sample input shape a model expects, or say clearly why it cannot.

Allowed, because they keep every pixel's meaning:
  * same shape                                        -> unchanged
  * images, same channels, smaller H/W than expected  -> zero padding, centred
    (LeNet's 32×32 on 28×28 MNIST: the classic Pad(2))
  * images, same channels, larger H/W                 -> centre crop
  * a flat model, e.g. (784,), and C·H·W == 784       -> unchanged: the model flattens itself
A dimension of -1 in the expected shape matches any size (sequence length, for instance).
Everything else (channel count, feature count, rank) is a DataError naming both shapes.
A streamed dataset (data/user_dataset.py) is adapted here in its first batches and input_shape;
the engine pads or crops each later batch the same way (pad_or_crop).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from tui_nn.fmt import format_shape

from .base import Dataset, DataError


def _matches(have: tuple[int, ...], want: tuple[int, ...]) -> bool:
    return len(have) == len(want) and all(w == -1 or h == w for h, w in zip(have, want))


def pad_or_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Centre x (N, C, H, W) on a (height, width) canvas: pad with zeros or crop, per axis."""
    _, _, h, w = x.shape
    # Negative padding crops; an odd leftover pixel goes to the bottom/right side.
    top = (height - h) // 2 if height >= h else -((h - height) // 2)
    left = (width - w) // 2 if width >= w else -((w - width) // 2)
    bottom = height - h - top
    right = width - w - left
    return F.pad(x, (left, right, top, bottom)).contiguous()  # (N, C, height, width)


def adapt_to_input(ds: Dataset, input_shape: tuple[int, ...], model_name: str) -> Dataset:
    want = tuple(int(d) for d in input_shape)
    have = tuple(ds.input_shape)
    if _matches(have, want):
        return ds
    is_image = len(have) == 3 and ds.train_x.dim() == 4
    if len(want) == 1 and want[0] != -1 and is_image and math.prod(have) == want[0]:
        return ds
    if is_image and len(want) == 3 and want[0] == have[0] and -1 not in want[1:]:
        height, width = want[1], want[2]
        verb = _verb(have[1:], (height, width))
        return dataclasses.replace(
            ds,
            train_x=pad_or_crop(ds.train_x, height, width),
            val_x=pad_or_crop(ds.val_x, height, width),
            input_shape=(have[0], height, width),
            description=(
                f"{ds.description} ({verb} {format_shape(have)} -> {format_shape(want)} for {model_name})"
            ),
        )
    raise DataError(
        f"model {model_name} expects input {format_shape(want)} but dataset {ds.name} gives "
        f"{format_shape(have)}; pick a dataset that fits {model_name} or a model made for {ds.name}"
    )


def _verb(have_hw: tuple[int, ...], want_hw: tuple[int, int]) -> str:
    grows = any(w > h for h, w in zip(have_hw, want_hw))
    shrinks = any(w < h for h, w in zip(have_hw, want_hw))
    return "padded and cropped" if grows and shrinks else "padded" if grows else "cropped"
