"""Batches of data that is not held in memory: your own Dataset (data/user_dataset.py) through a
DataLoader, an image folder's decode-once cache (data/image_cache.py) read ahead by a thread.

The order of the training batches is the in-memory path's: the trainer's seeded randperm, cut
into global batches, each rank reading its slice of every global batch. So a resume (from an
epoch end or mid-epoch: the checkpoint keeps the epoch's generator state and the step) reads
exactly the batches that were left, and the loss arithmetic under DDP is the same.
Workers are persistent (started at the first epoch, kept to the end); batches are pinned and
copied to the GPU without blocking when the run is on CUDA. The time the step loop waits for
its batches is counted (take_wait): StepMetrics.data_wait, so an input-bound run shows.
"""

from __future__ import annotations

import functools
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import torch
from torch.utils.data import DataLoader, Sampler, Subset

from tui_nn.data.adapt import pad_or_crop
from tui_nn.data.base import DataError
from tui_nn.data.image_cache import ignore_ctrl_c, usable_cores
from tui_nn.data.user_dataset import StreamedData, from_build, shape_targets, \
    split_python_spec
from tui_nn.textsafe import first_line

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.prepared import Prepared

MAX_AUTO_WORKERS = 8


def load_user_dataset(spec: str, *, batch_size: int = 64) -> StreamedData:
    """Your own Dataset (data/user_dataset.py): build() called, the first batch read and
    checked. The file runs as a model file does; what it raises is one line (a DataError)."""
    from tui_nn.zoo.sources import SourceError, load_file_attribute
    path, attr = split_python_spec(spec)
    try:
        build = load_file_attribute(path, attr)
    except SourceError as e:
        raise DataError(str(e)) from None
    if not callable(build):
        raise DataError(f"{path}:{attr} is {type(build).__name__}, not a function returning a "
                        "Dataset")
    try:
        result = build()
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the user's code may raise anything
        raise DataError(f"{spec}: build() raised {first_line(e, with_type=True)}") from None
    return from_build(result, spec, seed=0, batch_size=batch_size)


def sample_of(spec: str, data_dir: str | None = None) -> tuple[tuple[int, ...], torch.dtype]:
    """(input shape, dtype) of one sample of a dataset spec, for the shape inspector: your own
    Dataset's first sample; a folder's header probes; a registry entry's shape, without a
    download. Raises DataError."""
    from tui_nn.data.folder import folder_input_shape
    from tui_nn.data.registry import DATASETS, load_dataset, resolve_spec
    kind, arg = resolve_spec(spec)
    if kind == "python":
        x = load_user_dataset(spec, batch_size=1).train_x  # (1, *shape)
        return tuple(x.shape[1:]), x.dtype
    if kind == "folder":
        return folder_input_shape(arg), torch.float32
    if kind == "name":
        info = DATASETS[arg]
        return info.input_shape, torch.int64 if info.task == "sequence" else torch.float32
    x = load_dataset(spec, data_dir, download=False).train_x  # a CSV, longrange:LEN
    return tuple(x.shape[1:]), x.dtype


def auto_workers(requested: int, local_world: int = 1) -> int:
    """--workers N as given; -1: one per core left after the training process, shared by the
    processes on this machine, at most MAX_AUTO_WORKERS."""
    if requested >= 0:
        return requested
    return max(0, min(MAX_AUTO_WORKERS, usable_cores() // max(local_world, 1) - 1))


class _GlobalBatches(Sampler):
    """This rank's slice of each global batch of the epoch's order, from a first step on."""

    def __init__(self, batch_size: int, world: int, rank: int) -> None:
        self.batch_size, self.world, self.rank = batch_size, world, rank
        self.order = torch.empty(0, dtype=torch.long)
        self.first = 0

    def __iter__(self) -> Iterator[list[int]]:
        bs = self.batch_size
        for s in range(self.first * bs, self.order.numel(), bs):
            idx = self.order[s:s + bs]  # (b,)
            if self.world > 1:
                idx = idx.tensor_split(self.world)[self.rank]
            yield idx.tolist()

    def __len__(self) -> int:
        return max(0, -(-self.order.numel() // self.batch_size) - self.first)


class ReadAhead:
    """Batches of a dataset that reads a whole batch in one call (data/image_cache.py's
    ``read``), read READ_AHEAD batches ahead of the step loop by one background thread: the
    copy out of the mapped cache file runs in numpy with the GIL released, so it overlaps the
    step, and needs no worker processes (nor a pickled batch through shared memory). Batches
    are pinned in the thread when the run is on CUDA."""

    def __init__(self, read: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]],
                 batches: Iterable[list[int]], pin: bool) -> None:
        self.read, self.batches, self.pin = read, batches, pin

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ready: queue.Queue = queue.Queue(READ_AHEAD)
        stop = threading.Event()
        thread = threading.Thread(target=self._fill, args=(ready, stop), daemon=True,
                                  name="tui-nn-read-ahead")
        thread.start()
        try:
            while (item := ready.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item  # the read's error (a cache file gone), in the step loop
                yield item
        finally:  # the end, or a step loop that stopped early: the thread ends too
            stop.set()
            thread.join()

    def _fill(self, ready: queue.Queue, stop: threading.Event) -> None:
        try:
            for items in self.batches:
                x, y = self.read(items)
                if self.pin:
                    x, y = x.pin_memory(), y.pin_memory()
                if not _put(ready, (x, y), stop):
                    return
            last: object = _END
        except BaseException as e:  # noqa: BLE001 - handed to the step loop, raised there
            last = e
        _put(ready, last, stop)


_END = object()
READ_AHEAD = 4  # batches read before the step loop asks for them


def _put(ready: queue.Queue, item: object, stop: threading.Event) -> bool:
    """ready.put(item) unless the reader stopped first (False)."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


class BatchStream:
    """Training and validation batches of a StreamedData, on the trainer's device."""

    def __init__(self, t: "Prepared") -> None:
        self.t = t
        ds, dist = t.dataset, t.dist
        local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size if dist.enabled else 1))
        # A folder's cache is read by a thread (ReadAhead); your own Dataset by workers.
        self.reads_batches = callable(getattr(ds.train, "read", None))
        self.workers = 0 if self.reads_batches else auto_workers(t.config.workers, local)
        self.pin = t.device.type == "cuda"
        self.sampler = _GlobalBatches(t.batch_size, dist.world_size if dist.enabled else 1,
                                      dist.rank if dist.enabled else 0)
        self.train = (self._read_ahead(ds.train, self.sampler) if self.reads_batches
                      else self._loader(ds.train, batch_sampler=self.sampler))
        self._val: dict[int, Iterable] = {}
        self.wait_s = 0.0  # time spent waiting for training batches since take_wait

    def __str__(self) -> str:  # for the run's first line
        note = getattr(self.t.dataset, "note", "")
        pinned = ", pinned memory" if self.pin else ""
        if self.reads_batches:
            return f"{note + ', ' if note else ''}read ahead by a background thread{pinned}"
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}" if self.workers \
            else "no workers"
        return f"{note + ', ' if note else ''}streamed by a DataLoader ({workers}{pinned})"

    def _read_ahead(self, ds: Any, batches: Iterable[list[int]]) -> ReadAhead:
        """ReadAhead of a cached folder, its records cropped in the read when the model takes
        a smaller image (the bytes never copied are the saving); a pad is to_device's."""
        shape = self.t.dataset.input_shape  # (C, H, W)
        return ReadAhead(functools.partial(ds.read, size=tuple(shape[1:])), batches, self.pin)

    def _loader(self, ds: object, **kw: object) -> DataLoader:
        return DataLoader(ds, num_workers=self.workers, pin_memory=self.pin,
                          persistent_workers=self.workers > 0,
                          worker_init_fn=ignore_ctrl_c if self.workers else None, **kw)

    def epoch(self, order: torch.Tensor, first: int
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(x, y, global batch size) for the steps first.. of the epoch whose order is
        ``order`` (N,) on the CPU."""
        self.sampler.order, self.sampler.first = order, first
        n, bs = order.numel(), self.t.batch_size
        batches = iter(self.train)
        try:
            for i in range(first, first + len(self.sampler)):
                start = time.perf_counter()  # the step loop waits from here until it has one
                x, y = self.to_device(*next(batches))
                self.wait_s += time.perf_counter() - start
                yield self.t.inputs(x), y, min(bs, n - i * bs)
        finally:
            if hasattr(batches, "close"):  # a ReadAhead left mid-epoch (a stop) ends its thread
                batches.close()

    def take_wait(self, window_s: float) -> float:
        """The share of the last window_s seconds the training loop spent waiting for its
        batches (0..1); the count starts again."""
        waited, self.wait_s = self.wait_s, 0.0
        return min(1.0, waited / window_s) if window_s > 0 else 0.0

    def val_batches(self, vbs: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The validation set (this rank's contiguous shard under DDP) in batches of vbs."""
        if vbs not in self._val:
            val, dist = self.t.dataset.val, self.t.dist
            shard = torch.arange(len(val))  # (n,)
            if dist.enabled:
                shard = shard.tensor_split(dist.world_size)[dist.rank]
            if self.reads_batches:
                chunks = [c.tolist() for c in shard.split(vbs)]
                self._val = {vbs: self._read_ahead(val, chunks)}
            else:
                val = Subset(val, shard.tolist()) if dist.enabled else val
                self._val = {vbs: self._loader(val, batch_size=vbs, shuffle=False)}
        for x, y in self._val[vbs]:
            x, y = self.to_device(x, y)
            yield self.t.inputs(x), y

    def to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A collated batch in the engine's layout on the device (channels_last images when
        the run uses it; uint8 images still uint8); pinned batches copy without blocking."""
        t = self.t
        shape = t.dataset.input_shape
        if x.dim() == 4 and len(shape) == 3 and x.shape[2:] != shape[1:]:
            x = pad_or_crop(x, shape[1], shape[2])  # (b, C, H, W), as adapt_to_input did
        x = x.to(t.device, non_blocking=self.pin)  # (b, *input_shape)
        if t.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        y = shape_targets(y.to(t.device, non_blocking=self.pin), t.dataset.task)
        return x, y

    def close(self) -> None:
        """Stop the worker processes now, not when the trainer is collected."""
        for loader in (self.train, *self._val.values()):  # a ReadAhead's thread ends itself
            iterator = getattr(loader, "_iterator", None)
            if iterator is not None and hasattr(iterator, "_shutdown_workers"):
                iterator._shutdown_workers()
        self._val = {}
