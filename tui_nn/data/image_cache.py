"""Image folders larger than the memory budget: decoded once into a cache file, then read by
batch.

The first run decodes every image (in worker processes, one per core, from PARALLEL_MIN images
on) into one uint8 ``.npy`` file of fixed-size (C, H, W) records under the cache directory (``$TUI_NN_CACHE`` or ``~/.cache/tui-nn``), written atomically: an
interrupted or failed decode (Ctrl-C, a full disk) leaves no cache behind. The file's name
carries a hash of every image's path, size and modification time, the decode mode and size: a
tree that changed gets a new cache (the old one is removed), never a stale one. Later runs map
the file and read each batch's records in one fancy index (``CachedImages.__getitems__``),
through the DataLoader path the engine uses for your own Dataset (engine/loader.py).
"""

from __future__ import annotations

import functools
import hashlib
import os
import signal
from pathlib import Path
from typing import Any, Callable

import numpy as np
import psutil
import torch
from torch.utils.data import Dataset as TorchDataset

from tui_nn.fmt import fmt_bytes
from tui_nn.fsio import DiskWriteError, atomic_write, cache_dir

from .base import DataError, printable

_STATS_CHUNK = 256  # images per chunk when the mean and std are summed
PARALLEL_MIN = 1000  # fewer images decode faster in one process than a pool starts


def default_budget() -> int:
    """Half the memory available now (4 GiB when it cannot be read)."""
    try:
        return int(psutil.virtual_memory().available // 2)
    except (psutil.Error, OSError):  # no /proc (a sandbox)
        return 4 << 30


def cache_file(root: Path, samples: list[tuple[Path, int]], mode: str,
               size: tuple[int, int]) -> Path:
    """The cache file for this tree as it is now: <tree hash>-<content hash>.npy."""
    content = hashlib.sha256(f"{mode} {size}".encode())
    for path, label in samples:
        st = path.stat()
        content.update(f"\0{path}\0{st.st_size}\0{st.st_mtime_ns}\0{label}".encode())
    tree = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / "folders" / f"{tree}-{content.hexdigest()[:24]}.npy"


def build_cache(path: Path, samples: list[tuple[Path, int]], shape: tuple[int, int, int],
                decode: Callable[[Path], np.ndarray]) -> None:
    """Decode every sample into path, records (C, H, W) uint8 in sample order; other caches
    of the same tree (stale ones) are removed once it is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"descr": "|u1", "fortran_order": False, "shape": (len(samples), *shape)}

    def write(f: Any) -> None:
        np.lib.format.write_array_header_1_0(f, header)
        for pixels in decoded:
            hwc = pixels.reshape(shape[1], shape[2], shape[0])  # (H, W, C)
            f.write(np.ascontiguousarray(hwc.transpose(2, 0, 1)).tobytes())  # (C, H, W)

    images = [image for image, _ in samples]
    pool = _pool(len(images))
    decoded = pool.map(decode, images, chunksize=64) if pool else map(decode, images)
    try:
        atomic_write(path, write)
    except DiskWriteError as e:
        raise DataError(f"cannot cache the decoded images: {e}; no partial cache was "
                        "left") from None
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    for old in path.parent.glob(path.name.split("-")[0] + "-*.npy"):
        if old != path:
            old.unlink(missing_ok=True)


def _pool(n: int) -> Any:
    """Worker processes for decoding n images (None: decode in this process), one per core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    if n < PARALLEL_MIN or cores < 2:
        return None
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(min(cores, 16), initializer=_ignore_ctrl_c)


def _ignore_ctrl_c() -> None:
    """Ctrl-C is the main process's: it stops the decode and removes the partial file."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class CachedImages(TorchDataset):
    """Records of a cache file as (uint8 (C, H, W), class id) samples; a batch is one read."""

    def __init__(self, path: Path, index: np.ndarray, labels: torch.Tensor,
                 classes: list[str]) -> None:
        self.path, self.index, self.labels = path, index, labels  # index (n,), labels (n,)
        self.classes = classes
        self._array: np.ndarray | None = None  # mapped on first read, in each worker

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_array": None}  # a worker maps the file itself

    def _records(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")  # (N, C, H, W) uint8
        return self._array

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(self._records()[self.index[i]])), self.labels[i]

    def __getitems__(self, items: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.index[items]  # (b,)
        x = torch.from_numpy(self._records()[rows])  # (b, C, H, W) uint8, a copy
        return x, self.labels[items]

    @staticmethod
    def collate(batch: Any) -> Any:
        """__getitems__ returns the batch whole; a list of samples (from __getitem__) is
        stacked as default_collate would."""
        if isinstance(batch, tuple):
            return batch
        return torch.stack([x for x, _ in batch]), torch.stack([y for _, y in batch])


def channel_stats(records: np.ndarray, index: np.ndarray) -> tuple[tuple[float, ...],
                                                                    tuple[float, ...]]:
    """Per-channel mean and std of the [0, 1] pixels of records[index]: exact integer sums
    over small chunks (a float copy of the set is what the budget rules out)."""
    total = square = 0
    for s in range(0, len(index), _STATS_CHUNK):
        chunk = torch.from_numpy(records[np.sort(index[s:s + _STATS_CHUNK])]).long()
        total = total + chunk.sum(dim=(0, 2, 3))  # (C,)
        square = square + chunk.pow(2).sum(dim=(0, 2, 3))
    count = len(index) * records.shape[2] * records.shape[3]
    mean = total.double() / count / 255
    var = (square.double() / 255**2 - count * mean.pow(2)) / max(count - 1, 1)
    return (tuple(float(v) for v in mean),
            tuple(max(float(v), 1e-6) for v in var.clamp_min(0).sqrt()))


def load_cached_folder(root: Path, classes: list[str], samples: list[tuple[Path, int]],
                       n_given_train: int | None, mode: str, size: tuple[int, int], seed: int,
                       budget: int, decode: Callable[..., np.ndarray]) -> Any:
    """A folder over the memory budget as a StreamedData read from its cache (built first when
    missing). n_given_train: the tree's own train/ split (its first samples), else None."""
    from .split import split_indices
    from .user_dataset import from_build
    shape = (1 if mode == "L" else 3, size[1], size[0])  # (C, H, W); size is PIL's (W, H)
    path = cache_file(root, samples, mode, size)
    built = not path.exists()
    if built:
        build_cache(path, samples, shape, functools.partial(decode, mode=mode, size=size))
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)  # (N,)
    if n_given_train is not None:
        train_idx, val_idx = torch.arange(n_given_train), torch.arange(n_given_train, len(samples))
    else:
        train_idx, val_idx = split_indices(len(samples), seed, strata=labels)
    names = [printable(c) for c in classes]
    train, val = (CachedImages(path, idx.numpy(), labels[idx], names)
                  for idx in (train_idx, val_idx))
    ds = from_build((train, val), f"folder:{root.name}")
    mean, std = channel_stats(train._records(), train.index)
    decoded = len(samples) * shape[0] * shape[1] * shape[2]
    note = (f"{'decoded once into' if built else 'read from'} {path} ({fmt_bytes(decoded)} "
            f"decoded > memory budget {fmt_bytes(budget)})")
    from dataclasses import replace
    return replace(ds, mean=mean, std=std, labels=tuple(names), note=note,
                   description=f"{root}: {len(samples)} images, {len(classes)} classes, "
                               f"{shape[0]}×{shape[1]}×{shape[2]}, streamed from its cache")
