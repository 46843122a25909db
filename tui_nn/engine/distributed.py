"""Data-parallel training under torchrun: rank discovery, process group, collectives.

torchrun (torch.distributed.run) sets RANK, WORLD_SIZE and LOCAL_RANK; with them the Trainer
wraps the model in DistributedDataParallel (NCCL on CUDA, gloo on CPU). --batch-size stays the
global batch: each rank takes its slice of the same global permutation, and the loss is scaled
so that DDP's gradient average equals the single-process gradient of the whole batch.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "DistInfo":
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", "0"))
        except ValueError:
            return cls()
        return cls(rank=rank, world_size=world, local_rank=local)


def rank_device(info: DistInfo) -> torch.device:
    """This rank's GPU, cuda:LOCAL_RANK. Raises ValueError (a usage error) when there are
    fewer GPUs than processes on this node (CUDA's own words: "invalid device ordinal")."""
    count = torch.cuda.device_count()
    if not 0 <= info.local_rank < count:
        raise ValueError(f"LOCAL_RANK {info.local_rank} but {count} CUDA device(s) visible "
                         f"here: start at most {count} process(es) per node "
                         f"(--nproc-per-node {count}), or check CUDA_VISIBLE_DEVICES")
    return torch.device("cuda", info.local_rank)


def init_process_group(info: DistInfo, device: torch.device) -> None:
    if not info.enabled or dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # device_id binds the group to this rank's GPU: barrier() then knows which device
        # to use (without it, it warns and guesses) and NCCL connects eagerly.
        dist.init_process_group(backend="nccl", rank=info.rank, world_size=info.world_size,
                                device_id=device)
    else:
        dist.init_process_group(backend="gloo", rank=info.rank, world_size=info.world_size)


def destroy_process_group() -> None:
    """Leave the group together: a rank that tore its gloo group down while a peer was still
    in its last collective aborted at exit now and then ('terminate called without an active
    exception', also on the code before this change); a barrier first lines them up."""
    if not dist.is_initialized():
        return
    with contextlib.suppress(Exception):  # a peer that is already gone: nothing to wait for
        dist.barrier()
    dist.destroy_process_group()


def all_mean(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= info.world_size
    return t


def all_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def vote_controls(stop: bool, pause: bool, lr_factor: float, info: DistInfo,
                  device: torch.device) -> tuple[bool, bool, float]:
    """One all_reduce at a step every rank reaches: (any rank stops, rank 0 pauses, rank 0's lr
    factor). Ranks other than 0 pass pause=False and lr_factor=0."""
    t = torch.tensor([1.0 if stop else 0.0, 1.0 if pause else 0.0, lr_factor],
                     dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    stop_all, pause_all, factor = t.tolist()
    return stop_all > 0, pause_all > 0, factor if factor > 0 else 1.0


def torchrun_argv(nproc_per_node: int, nnodes: str | None, node_rank: int | None,
                  rdzv_endpoint: str | None, rdzv_id: str | None,
                  train_args: list[str]) -> list[str]:
    """Arguments for torch.distributed.run that start `python -m tui_nn train ...` per rank."""
    argv = [f"--nproc-per-node={nproc_per_node}"]
    multi_node = nnodes not in (None, "1") or rdzv_endpoint
    if multi_node:
        argv.append(f"--nnodes={nnodes or 1}")
        if node_rank is not None:
            argv.append(f"--node-rank={node_rank}")
        if rdzv_endpoint:
            argv += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}"]
        if rdzv_id:
            argv.append(f"--rdzv-id={rdzv_id}")
    else:
        argv.append("--standalone")
    return argv + ["-m", "tui_nn", "train", *train_args]
