"""The DataLoader path for data that is not held in memory (your own Dataset: data/user_dataset.py).

The order of the training batches is the in-memory path's: the trainer's seeded randperm, cut
into global batches, each rank reading its slice of every global batch. So a resume (from an
epoch end or mid-epoch: the checkpoint keeps the epoch's generator state and the step) reads
exactly the batches that were left, and the loss arithmetic under DDP is the same.
Workers are persistent (started at the first epoch, kept to the end); batches are pinned and
copied to the GPU without blocking when the run is on CUDA.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Iterator

import torch
from torch.utils.data import DataLoader, Sampler, Subset

from tui_nn.data.adapt import pad_or_crop
from tui_nn.data.user_dataset import shape_targets

if TYPE_CHECKING:  # pragma: no cover
    from tui_nn.engine.prepared import Prepared

MAX_AUTO_WORKERS = 8


def _worker_init(_: int) -> None:
    """Workers leave Ctrl-C to the training process, which stops at a step's end and then
    shuts them down: torch's worker loop exits on a KeyboardInterrupt of its own, and the
    batch the step is waiting for would never come."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def auto_workers(requested: int, local_world: int = 1) -> int:
    """--workers N as given; -1: one per core left after the training process, shared by the
    processes on this machine, at most MAX_AUTO_WORKERS."""
    if requested >= 0:
        return requested
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(0, min(MAX_AUTO_WORKERS, cores // max(local_world, 1) - 1))


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


class BatchStream:
    """Training and validation batches of a StreamedData, on the trainer's device."""

    def __init__(self, t: "Prepared") -> None:
        self.t = t
        ds, dist = t.dataset, t.dist
        local = int(os.environ.get("LOCAL_WORLD_SIZE", dist.world_size if dist.enabled else 1))
        self.workers = auto_workers(t.config.workers, local)
        self.pin = t.device.type == "cuda"
        self.sampler = _GlobalBatches(t.batch_size, dist.world_size if dist.enabled else 1,
                                      dist.rank if dist.enabled else 0)
        self.train = self._loader(ds.train, batch_sampler=self.sampler)
        self._val: dict[int, DataLoader] = {}

    def __str__(self) -> str:  # for the run's first line
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}" if self.workers \
            else "no workers"
        note = getattr(self.t.dataset, "note", "")
        return (f"{note + ', ' if note else ''}streamed by a DataLoader "
                f"({workers}{', pinned memory' if self.pin else ''})")

    def _loader(self, ds: object, **kw: object) -> DataLoader:
        # A dataset that reads a batch at once (data/image_cache.py) brings its own collate.
        return DataLoader(ds, num_workers=self.workers, pin_memory=self.pin,
                          persistent_workers=self.workers > 0,
                          worker_init_fn=_worker_init if self.workers else None,
                          collate_fn=getattr(ds, "collate", None), **kw)

    def epoch(self, order: torch.Tensor, first: int
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        """(x, y, global batch size) for the steps first.. of the epoch whose order is
        ``order`` (N,) on the CPU."""
        self.sampler.order, self.sampler.first = order, first
        n, bs = order.numel(), self.t.batch_size
        for i, (x, y) in enumerate(self.train, start=first):
            x, y = self.to_device(x, y)
            yield self.t.inputs(x), y, min(bs, n - i * bs)

    def val_batches(self, vbs: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The validation set (this rank's contiguous shard under DDP) in batches of vbs."""
        if vbs not in self._val:
            val, dist = self.t.dataset.val, self.t.dist
            if dist.enabled:
                shard = torch.arange(len(val)).tensor_split(dist.world_size)[dist.rank]
                val = Subset(val, shard.tolist())
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
        for loader in (self.train, *self._val.values()):
            iterator = getattr(loader, "_iterator", None)
            if iterator is not None and hasattr(iterator, "_shutdown_workers"):
                iterator._shutdown_workers()
        self._val = {}
