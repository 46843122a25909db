"""``--dataset my_data.py:build``: the user's own ``torch.utils.data.Dataset``, streamed.

``build()`` returns a Dataset of ``(input, target)`` samples, or a ``(train, val)`` pair of
them; a single one is split 80/20 with the seeded split the CSV and folder loaders use.
Nothing is decoded up front: the engine reads batches through a DataLoader (engine/loader.py).
The task is read off the first batch's targets, as csv_data reads a target column, except that
the dtype says what the values mean (a batch cannot show every class, and every batch must
keep the first one's layout):
  * integer targets (B,)            -> classification, ids 0..K-1; K from the Dataset's
                                       ``classes`` (or ``targets``), else the first batch
  * integer targets (B, T)          -> sequence, one class id per time step
  * float targets (B,)/(B, 1), 0/1  -> binary (csv_data's 0/1 rule), y float (B, 1)
  * any other float targets (B, k)  -> regression, y float (B, k)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Subset
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data.dataloader import default_collate

from tui_nn.textsafe import first_line

from .base import DataError, printable
from .csv_data import MAX_NAMED_CLASSES
from .split import split_indices


@dataclass
class StreamedData:
    """A user Dataset read batch by batch. train_x/train_y and val_x/val_y hold only the first
    batch of each split (on the CPU): the checks before a run and the insight probes read them."""

    name: str
    task: str
    train: Any  # torch.utils.data.Dataset of (input, target)
    val: Any
    train_x: torch.Tensor  # (b, *input_shape): the first training batch
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    input_shape: tuple[int, ...]
    num_classes: int | None = None
    labels: tuple[str, ...] | None = None
    description: str = ""
    mean: tuple[float, ...] | None = None  # no normalisation: the Dataset gives model inputs
    std: tuple[float, ...] | None = None
    note: str = ""  # where the batches come from, for the run's first line
    skipped: tuple[str, ...] = ()  # a folder's unreadable images (data/base.py Dataset)
    streamed = True

    @property
    def n_train(self) -> int:
        return len(self.train)

    @property
    def n_val(self) -> int:
        return len(self.val)


def is_python_spec(spec: str) -> bool:
    """``path/to/file.py:function`` (or a bare ``file.py``, whose ``build`` is called)."""
    where = spec.rpartition(":")[0] if ":" in spec else spec
    return where.lower().endswith(".py")


def split_python_spec(spec: str) -> tuple[str, str]:
    """(file, function name) of a Python dataset spec; the function defaults to build."""
    if spec.lower().endswith(".py"):
        return spec, "build"
    where, _, attr = spec.rpartition(":")
    return where, attr or "build"


def from_build(result: Any, name: str, *, seed: int = 0, batch_size: int = 64) -> StreamedData:
    """The StreamedData for what ``build()`` returned, its task read off a first batch of up to
    batch_size samples. Raises DataError (said as is) for anything that cannot train."""
    train, val = _pair(result, name, seed)
    first_x, first_y = first_batch(train, name, "training", batch_size)
    task, num_classes = _task(first_y, train, name)
    val_x, val_y = first_batch(val, name, "validation", batch_size)
    _same_layout(name, first_x, first_y, val_x, val_y)
    labels = getattr(train, "classes", None)
    labels = tuple(printable(str(c)) for c in labels) if isinstance(labels, (list, tuple)) \
        else None
    shape = tuple(first_x.shape[1:])
    return StreamedData(
        name=name, task=task, train=train, val=val,
        train_x=first_x, train_y=shape_targets(first_y, task),
        val_x=val_x, val_y=shape_targets(val_y, task), input_shape=shape,
        num_classes=num_classes, labels=labels if labels and num_classes else None,
        description=f"{name}: your Dataset, {len(train):,} train / {len(val):,} val samples "
                    f"of shape {'×'.join(map(str, shape)) or 'scalar'}, {task}, streamed")


def _pair(result: Any, name: str, seed: int) -> tuple[Any, Any]:
    if isinstance(result, (tuple, list)) and len(result) == 2 and all(
            _is_dataset(d) for d in result):
        train, val = result
    elif _is_dataset(result):
        train_idx, val_idx = split_indices(len(result), seed)
        train, val = Subset(result, train_idx.tolist()), Subset(result, val_idx.tolist())
    else:
        raise DataError(f"{name} returned {_kind(result)}: it must return a "
                        "torch.utils.data.Dataset, or a (train, val) pair of them, of "
                        "(input, target) samples")
    for split, ds in (("training", train), ("validation", val)):
        if len(ds) == 0:
            raise DataError(f"{name}: the {split} Dataset is empty")
    return train, val


def _is_dataset(obj: Any) -> bool:
    return isinstance(obj, TorchDataset) or (hasattr(obj, "__getitem__")
                                             and hasattr(obj, "__len__")
                                             and not isinstance(obj, (str, bytes, dict)))


def _kind(obj: Any) -> str:
    return "None" if obj is None else f"a {type(obj).__name__}"


def first_batch(ds: Any, name: str, split: str, batch_size: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first min(batch_size, len) samples collated as the DataLoader will: ((b, ...),
    (b, ...)), or a DataError naming what the samples were."""
    n = min(batch_size, len(ds))
    try:
        samples = [ds[i] for i in range(n)]
    except Exception as e:  # noqa: BLE001 - the user's __getitem__ may raise anything
        raise DataError(f"{name}: reading {split} sample raised "
                        f"{first_line(e, with_type=True)}") from None
    if not all(isinstance(s, (tuple, list)) and len(s) == 2 for s in samples):
        bad = next(s for s in samples if not (isinstance(s, (tuple, list)) and len(s) == 2))
        raise DataError(f"{name}: a {split} sample is {_describe(bad)}; each sample must be "
                        "an (input, target) pair")
    try:
        x, y = default_collate(samples)
    except Exception as e:  # noqa: BLE001 - the collate error, in one line
        raise DataError(f"{name}: the first {split} batch cannot be collated "
                        f"({first_line(e, with_type=True)}); "
                        f"its first samples are {_describe(samples[0])}"
                        + (f" and {_describe(samples[-1])}" if n > 1 else "")) from None
    for what, t in (("input", x), ("target", y)):
        if not isinstance(t, torch.Tensor):
            raise DataError(f"{name}: the {split} {what}s collate to {_kind(t)}, not a tensor")
    return x, y


def _describe(obj: Any) -> str:
    if isinstance(obj, torch.Tensor):
        return f"a {str(obj.dtype).removeprefix('torch.')} tensor of shape {tuple(obj.shape)}"
    if isinstance(obj, (tuple, list)):
        return "(" + ", ".join(_describe(o) for o in obj[:3]) + (", ..." if len(obj) > 3 else "") \
            + ")"
    return _kind(obj)


def _task(y: torch.Tensor, train: Any, name: str) -> tuple[str, int | None]:
    """(task, class count) from the first batch's targets y (b, ...): the module's table."""
    if y.dtype == torch.bool:
        y = y.float()
    if not y.is_floating_point():
        if y.dim() not in (1, 2) or bool((y < 0).any()):
            raise DataError(f"{name}: integer targets of shape {tuple(y.shape)}"
                            f"{' with negative values' if y.dim() in (1, 2) else ''} fit no "
                            "task: class ids 0..K-1 of shape (B,), or (B, T) for sequences")
        return ("classification" if y.dim() == 1 else "sequence"), _class_count(y, train)
    if y.dim() > 2 or not bool(torch.isfinite(y).all()):
        raise DataError(f"{name}: float targets of shape {tuple(y.shape)} fit no task: "
                        "regression takes (B,) or (B, k) finite values, binary (B,) or (B, 1) "
                        "of 0 and 1, classification int64 class ids (B,)")
    zero_one = bool(((y == 0) | (y == 1)).all())
    width = 1 if y.dim() == 1 else y.shape[1]
    return ("binary", 2) if zero_one and width == 1 else ("regression", None)


def _class_count(y: torch.Tensor, train: Any) -> int:
    for attr in ("classes", "targets"):
        known = getattr(train, attr, None)
        if known is not None:
            try:
                count = len(known) if attr == "classes" else int(torch.as_tensor(known).max()) + 1
            except (TypeError, ValueError, RuntimeError):
                continue
            if int(y.max()) < count <= MAX_NAMED_CLASSES:
                return count
    return int(y.max()) + 1


def shape_targets(y: torch.Tensor, task: str) -> torch.Tensor:
    """A batch's targets in the engine's layout for the task (data/base.py TASKS)."""
    if task in ("classification", "sequence"):
        return y.long()  # (B,) / (B, T)
    y = y.float()
    return y.unsqueeze(1) if y.dim() == 1 else y  # (B, 1) / (B, k)


def _same_layout(name: str, x: torch.Tensor, y: torch.Tensor, vx: torch.Tensor,
                 vy: torch.Tensor) -> None:
    for what, a, b in (("inputs", x, vx), ("targets", y, vy)):
        if a.shape[1:] != b.shape[1:] or a.is_floating_point() != b.is_floating_point():
            raise DataError(f"{name}: the validation {what} ({_describe(b[0])}) differ from the "
                            f"training {what} ({_describe(a[0])})")
