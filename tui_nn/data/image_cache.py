"""Image folders larger than the memory budget: decoded once into a cache file, then read by
batch.

The first run decodes every image (in worker processes, one per core, from PARALLEL_MIN images
on) into one uint8 ``.npy`` file of fixed-size (C, H, W) records under the cache directory (``$TUI_NN_CACHE`` or ``~/.cache/tui-nn``), written atomically: an
interrupted or failed decode (Ctrl-C, a full disk) leaves no cache behind. The file's name
carries a hash of every image's path, size and modification time, the decode mode and size: a
tree that changed gets a new cache (the old one is removed), never a stale one. Later runs map
the file and read each batch's records in one fancy index (``CachedImages.read``), a few
batches ahead of the step by a background thread (engine/loader.py's ReadAhead).
An image that cannot be read gets a zero record, left out of both splits; the list of them is
kept beside the cache (``.skipped.json``), so a later run says the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import psutil
import torch
from torch.utils.data import Dataset as TorchDataset

from tui_nn.fmt import fmt_bytes
from tui_nn.fsio import DiskWriteError, atomic_write, atomic_write_text, cache_dir

from .base import DataError, printable
from .progress import Progress

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
                decode: Callable[[Path], np.ndarray | str], skipped: Any,
                progress: Progress) -> None:
    """Decode every sample into path, records (C, H, W) uint8 in sample order; an image that
    cannot be read gets a zero record, its index and reason go to skipped and, beside the
    cache, to its skipped file. Other caches of the same tree (stale ones) are removed once
    this one is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"descr": "|u1", "fortran_order": False, "shape": (len(samples), *shape)}
    blank = bytes(shape[0] * shape[1] * shape[2])
    images = [image for image, _ in samples]

    def write(f: Any) -> None:
        np.lib.format.write_array_header_1_0(f, header)
        what = f"decoding {len(images):,} images into the cache"
        for i, pixels in enumerate(progress.track(what, decoded, len(images))):
            if isinstance(pixels, str):
                skipped.add(i, images[i], pixels)
                f.write(blank)
                continue
            hwc = pixels.reshape(shape[1], shape[2], shape[0])  # (H, W, C)
            f.write(np.ascontiguousarray(hwc.transpose(2, 0, 1)).tobytes())  # (C, H, W)
        if skipped.reasons:  # before the cache is renamed into place: never one without it
            atomic_write_text(_skipped_file(path), json.dumps(sorted(skipped.reasons.items())))

    try:
        with decoding(images, decode) as decoded:
            atomic_write(path, write)
    except DiskWriteError as e:
        _skipped_file(path).unlink(missing_ok=True)
        raise DataError(f"cannot cache the decoded images: {e}; no partial cache was "
                        "left") from None
    keep = {path, _skipped_file(path)}
    for old in path.parent.glob(path.name.split("-")[0] + "-*"):
        if old not in keep:
            old.unlink(missing_ok=True)


def _skipped_file(path: Path) -> Path:
    return path.with_suffix(".skipped.json")


def read_skipped(path: Path, samples: list[tuple[Path, int]], skipped: Any) -> bool:
    """The unreadable images a cache was built without, into skipped. False when its skipped
    file is there but not what build_cache writes (the cache is then rebuilt)."""
    file = _skipped_file(path)
    if not file.exists():
        return True
    try:
        entries = json.loads(file.read_text(encoding="utf-8"))
        pairs = [(int(i), str(why)[:500]) for i, why in entries]
    except (OSError, ValueError, TypeError):
        return False
    if not all(0 <= i < len(samples) for i, _ in pairs):
        return False
    for i, why in pairs:
        skipped.add(i, samples[i][0], why)
    return True


@contextlib.contextmanager
def decoding(paths: list[Path], decode: Callable[[Path], Any]) -> Iterator[Iterator[Any]]:
    """decode(path) of each path, in order: from PARALLEL_MIN paths on by worker processes
    (their work cancelled when the caller stops early: Ctrl-C, an error)."""
    pool = _pool(len(paths))
    try:
        yield pool.map(decode, paths, chunksize=64) if pool else map(decode, paths)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _pool(n: int) -> Any:
    """Worker processes for decoding n images (None: decode in this process), one per core."""
    cores = usable_cores()
    if n < PARALLEL_MIN or cores < 2:
        return None
    from concurrent.futures import ProcessPoolExecutor
    return ProcessPoolExecutor(min(cores, 16), initializer=ignore_ctrl_c)


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def ignore_ctrl_c(*_: object) -> None:
    """A worker's initialiser (a decode pool's, a DataLoader's): Ctrl-C is the main process's.
    A decode stops and removes its partial file; training stops at a step's end and then shuts
    its workers down (torch's worker loop exits on a KeyboardInterrupt of its own, and the batch
    the step is waiting for would never come)."""
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

    def read(self, items: list[int], size: tuple[int, int] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples items as one batch ((b, C, H, W) uint8, (b,) class ids) in one fancy index
        of the mapped file; size (H, W) smaller than the records: their centre only is copied
        (adapt.pad_or_crop's crop)."""
        rows = self.index[items]  # (b,)
        records = self._records()
        h, w = records.shape[2:]
        if size is not None and size[0] <= h and size[1] <= w and tuple(size) != (h, w):
            top, left = (h - size[0]) // 2, (w - size[1]) // 2
            x = records[rows, :, top:top + size[0], left:left + size[1]]  # (b, C, *size)
        else:
            x = records[rows]  # (b, C, H, W), a copy
        return torch.from_numpy(x), self.labels[items]


def channel_stats(records: np.ndarray, index: np.ndarray) -> tuple[tuple[float, ...],
                                                                    tuple[float, ...]]:
    """Per-channel mean and std of the [0, 1] pixels of records[index]: exact integer sums
    over small chunks (a float copy of the set is what the budget rules out)."""
    total = square = 0
    for s in range(0, len(index), _STATS_CHUNK):
        # int32 holds 255² (and is 7x faster to square than int64's pow); sums in int64.
        chunk = torch.from_numpy(records[np.sort(index[s:s + _STATS_CHUNK])]).int()
        total = total + chunk.sum(dim=(0, 2, 3), dtype=torch.int64)  # (C,)
        square = square + (chunk * chunk).sum(dim=(0, 2, 3), dtype=torch.int64)
    count = len(index) * records.shape[2] * records.shape[3]
    mean = total.double() / count / 255
    var = (square.double() / 255**2 - count * mean.pow(2)) / max(count - 1, 1)
    return (tuple(float(v) for v in mean),
            tuple(max(float(v), 1e-6) for v in var.clamp_min(0).sqrt()))


def load_cached_folder(root: Path, classes: list[str], samples: list[tuple[Path, int]],
                       n_given_train: int | None, mode: str, size: tuple[int, int], seed: int,
                       budget: int, skipped: Any, progress: Progress,
                       decode: Callable[[Path], np.ndarray | str]) -> Any:
    """A folder over the memory budget as a StreamedData read from its cache (built first when
    missing). n_given_train: the tree's own train/ split (its first samples), else None.
    skipped: data/folder.py's Skipped, holding the images whose header could not be read;
    decode: one image's pixels (H, W[, 3]) at the cache's mode and size, or why not."""
    from .user_dataset import from_build
    shape = (1 if mode == "L" else 3, size[1], size[0])  # (C, H, W); size is PIL's (W, H)
    path = cache_file(root, samples, mode, size)
    built = not (path.exists() and read_skipped(path, samples, skipped))
    if built:
        build_cache(path, samples, shape, decode, skipped, progress)
    train_idx, val_idx = _split(samples, skipped.reasons, n_given_train, seed)
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)  # (N,)
    names = [printable(c) for c in classes]
    train, val = (CachedImages(path, idx.numpy(), labels[idx], names)
                  for idx in (train_idx, val_idx))
    ds = from_build((train, val), f"folder:{root.name}")
    mean, std = channel_stats(train._records(), train.index)
    decoded = len(samples) * shape[0] * shape[1] * shape[2]
    note = (f"{'decoded once into' if built else 'read from'} {path} ({fmt_bytes(decoded)} "
            f"decoded > memory budget {fmt_bytes(budget)})")
    lost = f", {len(skipped.reasons)} unreadable skipped" if skipped.reasons else ""
    from dataclasses import replace
    return replace(ds, mean=mean, std=std, labels=tuple(names), note=note,
                   skipped=skipped.lines(samples),
                   description=f"{root}: {len(samples) - len(skipped.reasons)} images, "
                               f"{len(classes)} classes, {shape[0]}×{shape[1]}×{shape[2]}, "
                               f"streamed from its cache{lost}")


def _split(samples: list[tuple[Path, int]], bad: dict[int, str], n_given_train: int | None,
           seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) record indices of the readable samples: the tree's own split, or the
    seeded stratified one of data/folder.py's in-memory path over the same samples."""
    from .split import split_indices
    good = torch.tensor([i for i in range(len(samples)) if i not in bad], dtype=torch.int64)
    if n_given_train is not None:
        return good[good < n_given_train], good[good >= n_given_train]
    labels = torch.tensor([samples[i][1] for i in good.tolist()], dtype=torch.int64)
    train, val = split_indices(len(good), seed, strata=labels)
    return good[train], good[val]
