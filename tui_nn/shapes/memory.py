"""Will it fit? Training memory predicted from one traced training forward on meta.

    total = params + grads + optimizer state + activations

- activations: the tensors autograd saves for backward in one training forward at batch B,
  the input included, parameters and buffers excluded, each storage counted once (a view
  keeps its whole storage alive, and two views of one storage cost it once). They are
  collected with `torch.autograd.graph.saved_tensors_hooks` while the model runs on meta
  (`trainstep.SavedTensors`).
- grads: one per trainable parameter, in its dtype.
- optimizer: the state torch's optimizers keep (momentum buffers, Adam's two moments and a
  float32 `step` per parameter).

`measure_saved_bytes` counts the same thing on real tensors: the tests and the Trainer compare
it with the prediction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from tui_nn.fmt import parse_size
from tui_nn.modelmode import in_mode
from tui_nn.shapes.trace import make_inputs, trace
from tui_nn.shapes.trainstep import SavedTensors

# State tensors per parameter, as multiples of the parameter's bytes, and float32 scalars.
_STATE: dict[str, tuple[int, int]] = {
    "sgd": (0, 0), "momentum": (1, 0), "nesterov": (1, 0),
    "adam": (2, 1), "adamw": (2, 1), "rmsprop": (1, 1),
}
OPTIMIZERS = tuple(_STATE)
AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_SCALAR_BYTES = 4  # Adam's and RMSprop's `step`: a float32 scalar tensor per parameter


class MemoryUsageError(ValueError):
    """An unknown optimizer, precision or memory size: the message says what is accepted."""


@dataclass
class MemoryMeasurement:
    """What one real training step at the estimate's batch size used (`inspect --measure`)."""

    device: str  # 'cpu' or 'cuda:0'
    activations: int  # bytes autograd saved in one training forward, counted as predicted
    peak_allocated: int | None = None  # CUDA: max_memory_allocated over forward + backward


@dataclass
class MemoryEstimate:
    """Bytes for one training step at `batch_size`; `max_batch` for the budget, if one."""

    batch_size: int
    optimizer: str
    amp: str
    params: int
    grads: int
    optimizer_state: int
    activations: int
    # Of the activations: the low-precision weight copies autocast makes and backward keeps.
    amp_weight_copies: int = 0
    budget: int | None = None  # bytes available (--device-memory or the visible GPU)
    max_batch: int | None = None  # the largest batch whose total fits the budget
    notes: list[str] = field(default_factory=list)
    measured: MemoryMeasurement | None = None  # `inspect --measure`: the real figures

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer_state + self.activations

    @property
    def fits(self) -> bool | None:
        return None if self.budget is None else self.total <= self.budget

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["optimizer"] = self.optimizer_state  # byte counts share one naming scheme
        data["optimizer_name"] = self.optimizer
        del data["optimizer_state"]
        data["total"] = self.total
        data["fits"] = self.fits
        return data


# --- parameters, grads, optimizer state ------------------------------------------------------

def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def param_bytes(model: nn.Module) -> int:
    return sum(_nbytes(p) for p in model.parameters())  # each shared parameter once


def grad_bytes(model: nn.Module) -> int:
    return sum(_nbytes(p) for p in model.parameters() if p.requires_grad)


def optimizer_bytes(model: nn.Module, optimizer: str) -> int:
    """The state `torch.optim` keeps after the first step, for the trainable parameters."""
    copies, scalars = _STATE[_known_optimizer(optimizer)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    return sum(copies * _nbytes(p) + scalars * _SCALAR_BYTES for p in trainable)


def _known_optimizer(name: str) -> str:
    if name not in _STATE:
        raise MemoryUsageError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")
    return name


# --- saved tensors on real tensors -----------------------------------------------------

def measure_saved_bytes(model: nn.Module, inputs: torch.Tensor | tuple | list,
                        loss_fn: Callable[[Any], torch.Tensor] | None = None) -> int:
    """Bytes autograd really saves in one training forward of `model` on real `inputs`
    (and `loss_fn(output)` when given), counted as the prediction counts them. The graph is
    freed before returning; the model's train/eval mode is restored."""
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    recorder = SavedTensors(exclude=[*model.parameters(), *model.buffers()])
    try:
        with in_mode(model, training=True), torch.enable_grad(), recorder.hooks():
            out = model(*inputs)
            if loss_fn is not None:
                out = loss_fn(out)
        del out
    finally:
        recorder.release()
    return recorder.bytes


# --- sizes and budgets -----------------------------------------------------------------------

def parse_bytes(text: str) -> int:
    """'80GiB' -> 85899345920, '24 GB' -> 24e9, '512MiB', '1.5TiB', or a plain byte count:
    fmt.parse_size's units (--memory-budget's), and more than 0."""
    try:
        n = parse_size(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise MemoryUsageError(f"bad memory size {text!r}: give e.g. 80GiB, 24GB or 512MiB")
    return n


# What a GPU's total loses before a training step's tensors: the CUDA context (0.3-0.5 GB),
# cuBLAS/cuDNN workspaces and the caching allocator's rounding. A budget taken from the
# visible GPU keeps this back; one given with --device-memory is used as given.
GPU_RESERVE_BYTES, GPU_RESERVE_FRACTION = 512 * 2**20, 0.05


def visible_gpu_bytes() -> int | None:
    """The visible GPU's memory less the reserve above."""
    if not torch.cuda.is_available():
        return None
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    return max(0, total - GPU_RESERVE_BYTES - int(total * GPU_RESERVE_FRACTION))


def largest_batch(fixed: int, activations: int, batch_size: int, budget: int) -> int:
    """Activations grow linearly with the batch (what they hold is per sample; the few
    batch-independent tensors, like rotary tables, make this slightly cautious)."""
    per_sample = activations / max(batch_size, 1)
    if fixed > budget:
        return 0
    if per_sample <= 0:
        return batch_size
    return max(0, math.floor((budget - fixed) / per_sample))


# --- the estimate ----------------------------------------------------------------------------

@dataclass
class MemoryRequest:
    """What `inspect --batch-size/--optimizer/--amp/--device-memory` asks for."""

    batch_size: int | None = None  # None: the traced input's batch
    optimizer: str = "adam"
    amp: str = "off"  # 'off' | 'bf16' | 'fp16'
    budget: int | None = None  # bytes; None: the visible GPU's memory, if there is one

    def __post_init__(self) -> None:
        _known_optimizer(self.optimizer)
        if self.amp not in AMP_DTYPES:
            raise MemoryUsageError(f"unknown --amp {self.amp!r}: use off, bf16 or fp16")
        if self.batch_size is not None and self.batch_size < 1:
            raise MemoryUsageError(f"--batch-size must be ≥ 1, got {self.batch_size}")


def estimate_memory(model: nn.Module, shapes: list[tuple[int, ...]], dtypes: list[torch.dtype],
                    request: MemoryRequest) -> tuple[MemoryEstimate | None, Any]:
    """Trace one training forward of the meta `model` at the requested batch; returns the
    estimate (None when that forward fails) and the trace result (rows with saved bytes)."""
    batch = request.batch_size or (shapes[0][0] if shapes and shapes[0] else 1)
    result = trace(model, make_inputs(batched_shapes(shapes, batch), dtypes), formulas=False,
                   training=True, amp_dtype=AMP_DTYPES[request.amp])
    if result.diagnosis is not None:
        return None, result
    estimate = MemoryEstimate(
        batch_size=batch, optimizer=request.optimizer, amp=request.amp,
        params=param_bytes(model), grads=grad_bytes(model),
        optimizer_state=optimizer_bytes(model, request.optimizer),
        activations=result.saved_bytes, amp_weight_copies=result.amp_weight_copies)
    estimate.budget = request.budget if request.budget is not None else visible_gpu_bytes()
    if estimate.budget is not None:
        # Autocast's weight copies do not grow with the batch.
        copies = estimate.amp_weight_copies
        fixed = estimate.params + estimate.grads + estimate.optimizer_state + copies
        estimate.max_batch = largest_batch(fixed, estimate.activations - copies, batch,
                                           estimate.budget)
    return estimate, result


def batched_shapes(shapes: list[tuple[int, ...]], batch: int) -> list[tuple[int, ...]]:
    """The inputs' shapes at `batch`: every input batched like the first gets the new batch."""
    old = shapes[0][0] if shapes and shapes[0] else None
    return [(batch, *s[1:]) if s and s[0] == old else s for s in shapes]


def copy_saved_bytes(source: list, target: list) -> None:
    """Per-row saved bytes from the training trace onto the inspection's rows, matched by
    path and call number (train mode may call modules eval mode skips, and vice versa)."""
    def keyed(rows: list) -> dict[tuple[str, int], Any]:
        count: dict[str, int] = {}
        out = {}
        for row in rows:
            n = count.get(row.path, 0)
            count[row.path] = n + 1
            out[(row.path, n)] = row
        return out

    found = keyed(source)
    for key, row in keyed(target).items():
        if key in found:
            row.saved_bytes = found[key].saved_bytes
