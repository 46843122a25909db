"""'It does not fit: what do I change?' The memory estimate redone for the usual levers.

- as is: the estimate asked for;
- bf16 autocast: another training trace on meta under the emulated autocast;
- activation checkpointing of the model's blocks (torch.utils.checkpoint around each),
  predicted from the per-row saved bytes of the training trace: a checkpointed block keeps
  only its input during the forward, and during backward recomputes one block at a time, so

      activations = saved − Σ saved(block) + Σ input(block) + max(saved(block) − input(block))

- plain SGD instead of a stateful optimizer: no optimizer state.

Each option says its total and the largest batch the budget takes.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tui_nn.shapes.memory import (MemoryEstimate, MemoryRequest, estimate_memory, largest_batch,
                                  measure_saved_bytes, optimizer_bytes)
from tui_nn.shapes.records import LayerRow

# Modules that are only holders of blocks: look inside them for the blocks.
_CONTAINERS = ("Sequential", "ModuleList", "ModuleDict")


@dataclass
class FitOption:
    label: str  # 'as is', 'bf16 autocast', 'checkpoint 8 blocks', 'SGD instead of adam'
    change: str  # what to do: '--amp bf16', 'torch.utils.checkpoint on layer1.0 … layer4.1'
    activations: int
    total: int
    max_batch: int | None  # None: no budget known

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def checkpoint_blocks(rows: list[LayerRow]) -> list[LayerRow]:
    """The blocks worth checkpointing: the root's non-leaf children, looking inside holders
    (Sequential, ModuleList) and inside a child that holds over half the saved bytes."""
    if not rows:
        return []
    total = rows[0].saved_bytes
    return _blocks_under(rows, 0, total)


def _blocks_under(rows: list[LayerRow], start: int, total: int) -> list[LayerRow]:
    out: list[LayerRow] = []
    for i in _child_indices(rows, start):
        row = rows[i]
        if row.kind != "module" or row.leaf:
            continue
        inner = [j for j in _child_indices(rows, i)
                 if rows[j].kind == "module" and not rows[j].leaf]
        big = row.saved_bytes * 2 > total and len(inner) > 1
        if inner and (row.type in _CONTAINERS or big):
            out.extend(_blocks_under(rows, i, total))
        else:
            out.append(row)
    return out


def _child_indices(rows: list[LayerRow], parent: int) -> list[int]:
    depth = rows[parent].depth
    out = []
    for i in range(parent + 1, len(rows)):
        if rows[i].depth <= depth:
            break
        if rows[i].depth == depth + 1:
            out.append(i)
    return out


def input_bytes(row: LayerRow) -> int:
    """The bytes of a block's inputs, at its outputs' element size."""
    out_numel = sum(math.prod(s) for s in row.output_shapes)
    size = row.output_bytes // out_numel if out_numel else 4
    return sum(math.prod(s) for s in row.input_shapes) * size


def checkpointed_activations(activations: int, blocks: list[LayerRow]) -> int:
    kept = [input_bytes(b) for b in blocks]
    recompute = max((b.saved_bytes - k for b, k in zip(blocks, kept)), default=0)
    return activations - sum(b.saved_bytes for b in blocks) + sum(kept) + max(recompute, 0)


def _option(label: str, change: str, estimate: MemoryEstimate, activations: int,
            optimizer_state: int, copies: int = 0) -> FitOption:
    fixed = estimate.params + estimate.grads + optimizer_state + copies
    total = fixed + activations - copies
    best = None
    if estimate.budget is not None:
        best = largest_batch(fixed, activations - copies, estimate.batch_size, estimate.budget)
    return FitOption(label, change, activations, total, best)


def what_fits(model: nn.Module, shapes: list, dtypes: list, request: MemoryRequest,
              estimate: MemoryEstimate, rows: list[LayerRow]) -> list[FitOption]:
    """The estimate as is and with each lever; `rows` are the training trace's."""
    state = estimate.optimizer_state
    out = [_option("as is", "", estimate, estimate.activations, state,
                   estimate.amp_weight_copies)]
    if request.amp == "off":
        amp = dataclasses.replace(request, amp="bf16", batch_size=estimate.batch_size)
        low, _ = estimate_memory(model, shapes, dtypes, amp)
        if low is not None:
            out.append(_option("bf16 autocast", "--amp bf16", estimate, low.activations,
                               state, low.amp_weight_copies))
    blocks = checkpoint_blocks(rows)
    if blocks:
        names = blocks[0].path if len(blocks) == 1 else f"{blocks[0].path} … {blocks[-1].path}"
        out.append(_option(f"checkpoint {len(blocks)} block{'s' * (len(blocks) > 1)}",
                           f"torch.utils.checkpoint on {names}", estimate,
                           checkpointed_activations(estimate.activations, blocks), state,
                           estimate.amp_weight_copies))
    if state:
        out.append(_option(f"SGD instead of {estimate.optimizer}", "--optimizer sgd", estimate,
                           estimate.activations, optimizer_bytes(model, "sgd"),
                           estimate.amp_weight_copies))
    return out


def top_saved(rows: list[LayerRow], n: int = 5) -> list[LayerRow]:
    """The layers (leaf modules and recorded functions) that save the most for backward."""
    leaves = [r for r in rows if r.leaf and r.depth > 0 and r.saved_bytes > 0]
    return sorted(leaves, key=lambda r: -r.saved_bytes)[:n]


def measure_checkpointed(model: nn.Module, inputs: list[torch.Tensor], paths: list[str]) -> int:
    """On real tensors: what a training forward saves with each module at `paths` run under
    torch.utils.checkpoint, plus the largest recomputation a block makes during backward
    (measured by running the block alone on the input it got), counted as predicted."""
    from torch.utils.checkpoint import checkpoint

    modules = dict(model.named_modules())
    captured: dict[str, torch.Tensor] = {}
    hooks = []
    for path in paths:
        block = modules[path]
        block.forward = functools.partial(checkpoint, block.forward, use_reentrant=False)
        hooks.append(block.register_forward_pre_hook(
            lambda m, args, p=path: captured.setdefault(p, args[0].detach())))
    try:
        saved = measure_saved_bytes(model, inputs)
    finally:
        for path, hook in zip(paths, hooks):
            del modules[path].forward
            hook.remove()
    # A block recomputed during backward saves what it saves alone, less its input (kept).
    recompute = max(measure_saved_bytes(modules[p], x) - x.numel() * x.element_size()
                    for p, x in captured.items())
    return saved + max(recompute, 0)
