"""`inspect --measure`: the memory estimate checked against one real training step.

After the meta estimate, the model is built for real (on CUDA when there is one, else on CPU),
one training forward at the estimate's batch size runs on random inputs of the inspected
shapes and dtypes, and what autograd saves is counted with the hooks the prediction uses
(`measure_saved_bytes`). On CUDA one backward also runs between
`reset_peak_memory_stats` and `max_memory_allocated`: the peak a step really reaches.

Nothing is built when the prediction says it would not fit: params + grads + activations
must fit in the GPU's free memory, or on CPU in half of the available RAM (the other half
is left to the rest of the machine). A 70B model inspected on meta is refused by that check,
never built.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from tui_nn.fmt import fmt_bytes
from tui_nn.shapes.memory import (AMP_DTYPES, MemoryEstimate, MemoryMeasurement,
                                  MemoryUsageError, batched_shapes, measure_saved_bytes)
from tui_nn.shapes.trace import tensors_in


class MeasureRefused(MemoryUsageError):
    """The model would not fit where it would be measured: nothing was built."""


def measure_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() \
        else torch.device("cpu")


def available_bytes(device: torch.device) -> int:
    """What a measurement may use: the GPU's free memory, or half of the available RAM."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    import psutil

    return int(psutil.virtual_memory().available) // 2


def refuse_if_too_big(estimate: MemoryEstimate, device: torch.device,
                      limit: int | None = None) -> None:
    """Raise MeasureRefused when the prediction does not fit in `limit` (default: what
    `available_bytes` says for `device`)."""
    limit = available_bytes(device) if limit is None else limit
    # A measured step holds the weights, their grads (CUDA's backward) and the activations;
    # no optimizer step runs, so no optimizer state.
    need = estimate.params + estimate.grads + estimate.activations
    if need > limit:
        where = "the GPU's free memory" if device.type == "cuda" else "half of the available RAM"
        weights = estimate.params + estimate.grads
        hint = "lower --batch-size or leave out --measure" if weights <= limit else \
            f"the weights and their grads alone are {fmt_bytes(weights)}: leave out --measure"
        raise MeasureRefused(
            f"not measuring: one training step needs about {fmt_bytes(need)} (params + grads + "
            f"activations at batch {estimate.batch_size}) and {where} is {fmt_bytes(limit)}; {hint}")


def random_inputs(shapes: list[tuple[int, ...]], dtypes: list[torch.dtype],
                  device: torch.device) -> list[torch.Tensor]:
    """Floats from a normal; integers (token ids, class indices) small enough for any table."""
    g = torch.Generator(device=device).manual_seed(0)
    return [torch.randn(s, generator=g, dtype=d, device=device) if d.is_floating_point else
            torch.randint(0, 4, s, generator=g, dtype=d, device=device)
            for s, d in zip(shapes, dtypes)]


def scalar_loss(out: Any) -> torch.Tensor:
    """A loss from whatever the model returns: the mean of every floating tensor in it
    (a mean saves nothing for backward, so the count matches the prediction's)."""
    tensors = [t for t in tensors_in(out) if t.is_floating_point()]
    if not tensors:
        raise MemoryUsageError("not measuring: the model's output holds no floating tensor "
                               "to take a loss of")
    loss = tensors[0].float().mean()
    for t in tensors[1:]:
        loss = loss + t.float().mean()
    return loss


def measure(source: Any, estimate: MemoryEstimate, shapes: list[tuple[int, ...]],
            dtypes: list[torch.dtype], limit: int | None = None) -> MemoryMeasurement:
    """Build `source` for real and measure one training step at `estimate.batch_size`.
    `source`: what `load_model` takes (a source string) or a callable returning the model on
    the device it is given. Refuses (MeasureRefused) before building when it would not fit."""
    device = measure_device()
    refuse_if_too_big(estimate, device, limit)
    model = _build(source, device)
    inputs = random_inputs(batched_shapes(shapes, estimate.batch_size), dtypes, device)
    amp = AMP_DTYPES[estimate.amp]
    with _autocast(device, amp):
        saved = measure_saved_bytes(model, inputs, scalar_loss)
    peak = _cuda_peak(model, inputs, amp) if device.type == "cuda" else None
    return MemoryMeasurement(device=str(device), activations=saved, peak_allocated=peak)


def _build(source: Any, device: torch.device) -> torch.nn.Module:
    if callable(source) and not isinstance(source, str):
        return source(device)
    from tui_nn.zoo.sources import load_model

    model = load_model(source, device=device).model
    # A file's ready-made instance, or a constructor that fell back to CPU: move it.
    return model.to(device)


def _autocast(device: torch.device, amp: torch.dtype | None) -> Any:
    return contextlib.nullcontext() if amp is None else torch.autocast(device.type, dtype=amp)


def _cuda_peak(model: torch.nn.Module, inputs: list[torch.Tensor],
               amp: torch.dtype | None) -> int:
    """Peak allocated over one forward + backward; the weights and inputs were already
    allocated, so they are in it, as they are in the prediction."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    with _autocast(inputs[0].device, amp):
        loss = scalar_loss(model(*inputs))
    loss.backward()
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated())
