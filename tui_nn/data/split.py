"""Seeded train/validation splits shared by the loaders that have no split of their own."""

from __future__ import annotations

import torch

VAL_FRACTION = 0.2


def split_indices(
    n: int, seed: int, val_fraction: float = VAL_FRACTION, strata: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, val) of a seeded random split; both non-empty when n >= 2.

    With ``strata`` (class ids, shape (n,)) every class is split on its own, so a tiny image
    folder does not end up with a class missing from validation by bad luck.
    """
    gen = torch.Generator().manual_seed(seed)
    if strata is None:
        groups = [torch.randperm(n, generator=gen)]
    else:
        groups = []
        for cls in torch.unique(strata):
            members = torch.nonzero(strata == cls).flatten()
            groups.append(members[torch.randperm(members.numel(), generator=gen)])
    train, val = [], []
    for members in groups:
        k = members.numel()
        n_val = round(k * val_fraction)
        # Keep one sample on each side when the group allows it; a singleton goes to training.
        n_val = min(max(n_val, 1 if k >= 2 else 0), k - 1) if k >= 1 else 0
        val.append(members[:n_val])
        train.append(members[n_val:])
    train_idx = torch.cat(train)
    val_idx = torch.cat(val)
    if val_idx.numel() == 0 and train_idx.numel() >= 2:
        val_idx, train_idx = train_idx[:1], train_idx[1:]
    # Sorted indices keep the files' order inside each split, which makes results easy to trace.
    return train_idx.sort().values, val_idx.sort().values
