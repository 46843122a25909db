"""What a training forward does differently on meta, for the trace to record it: the tensors
autograd saves for backward, counted per storage; autocast's casts; attention through the
fused kernel a real device would use.

A storage is known by its StorageImpl (`_cdata`): meta storages have no data pointers, and
every saved tensor is kept alive until the trace ends so no key is reused.
"""

from __future__ import annotations

import types
from typing import Any, Callable, Iterable

import torch
from torch import nn

# --- saved tensors ---------------------------------------------------------------------------

class SavedTensors:
    """A saved-tensor hook that counts each storage once, leaving out the given tensors'
    storages (parameters, buffers). `on_new(nbytes)` is told about every new storage."""

    def __init__(self, exclude: Iterable[torch.Tensor] = (),
                 on_new: Callable[[int], None] | None = None) -> None:
        self._excluded = {_storage_key(t) for t in exclude}
        self._seen: dict[int, int] = {}  # storage key -> bytes
        self._alive: list[torch.Tensor] = []  # keeps storages alive: keys are never reused
        self.on_new = on_new
        self.bytes = 0

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        key = _storage_key(t)
        if key not in self._excluded and key not in self._seen:
            size = t.untyped_storage().nbytes()
            self._seen[key] = size
            self._alive.append(t)
            self.bytes += size
            if self.on_new is not None:
                self.on_new(size)
        return t

    def bytes_of(self, tensors: Iterable[torch.Tensor]) -> int:
        """How many of the saved bytes are these tensors' storages."""
        keys = {_storage_key(t) for t in tensors}
        return sum(size for key, size in self._seen.items() if key in keys)

    def hooks(self) -> torch.autograd.graph.saved_tensors_hooks:
        return torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t)

    def release(self) -> None:
        self._alive.clear()


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata


# --- mixed precision on meta -----------------------------------------------------------------
# torch.autocast only acts on CUDA/CPU/... tensors, never on meta ones, so the trace applies
# CUDA autocast's rules itself: matmul-like ops run in the low precision, the ops autocast
# keeps in float32 get float32 inputs, everything else runs in its inputs' dtype.

F = torch.nn.functional
_LOW = {F.linear, torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.mm,
        torch.Tensor.mm, torch.bmm, torch.Tensor.bmm, torch.addmm, torch.baddbmm, torch.addbmm,
        torch.conv1d, torch.conv2d, torch.conv3d, torch.conv_transpose1d,
        torch.conv_transpose2d, torch.conv_transpose3d, F.scaled_dot_product_attention,
        torch.einsum, F.prelu, torch.chain_matmul, torch.nn.functional.bilinear}
_FP32 = {F.softmax, F.log_softmax, torch.softmax, torch.log_softmax, torch.Tensor.softmax,
         torch.Tensor.log_softmax, F.layer_norm, F.group_norm, torch.layer_norm,
         torch.group_norm, F.cross_entropy, F.nll_loss, F.mse_loss, F.l1_loss,
         F.binary_cross_entropy_with_logits, F.smooth_l1_loss, F.kl_div, torch.exp,
         torch.Tensor.exp, torch.log, torch.Tensor.log, torch.pow, torch.Tensor.pow,
         torch.rsqrt, torch.Tensor.rsqrt, torch.norm, torch.Tensor.norm, F.softplus,
         torch.cumsum, torch.Tensor.cumsum}


class AutocastRules:
    """Casts a call's floating-point tensor arguments as CUDA autocast would."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self._param_casts: dict[int, torch.Tensor] = {}  # autocast casts each weight once

    @property
    def weight_copies(self) -> list[torch.Tensor]:
        return list(self._param_casts.values())

    def cast(self, func: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        try:
            target = self.dtype if func in _LOW else torch.float32 if func in _FP32 else None
        except TypeError:  # an unhashable callable
            target = None
        if target is None:
            return args, kwargs
        return (tuple(self._cast(a, target) for a in args),
                {k: self._cast(v, target) for k, v in kwargs.items()})

    def _cast(self, value: Any, dtype: torch.dtype) -> Any:
        if isinstance(value, (list, tuple)):
            return type(value)(self._cast(v, dtype) for v in value)
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() \
                or value.dtype == dtype or value.dtype == torch.float64:
            return value
        if isinstance(value, nn.Parameter):
            key = id(value)
            if key not in self._param_casts:
                self._param_casts[key] = value.to(dtype)
            return self._param_casts[key]
        return value.to(dtype)


# --- attention as a real device runs it ------------------------------------------------------

def fused_attention(args: tuple, kwargs: dict) -> torch.Tensor | None:
    """F.scaled_dot_product_attention through the fused kernel a CPU (and, alike, a CUDA)
    device picks: it saves q, k, v, the output and a log-sum-exp for backward, not the
    B×H×L×S attention matrix the meta device's math fallback would save. None when the call
    is one the fused kernel does not take (then the caller runs the original)."""
    names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
             "enable_gqa")
    bound = dict(zip(names, args))
    bound.update(kwargs)
    q, k, v = bound.get("query"), bound.get("key"), bound.get("value")
    if bound.get("enable_gqa") or not all(isinstance(t, torch.Tensor) and t.is_meta
                                           for t in (q, k, v)):
        return None
    if q.dim() != 4 or k.dim() != 4 or q.shape[1] != k.shape[1]:
        return None  # unbatched or grouped heads: the fused CPU kernel wants B×H×L×E
    try:
        out, _ = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, float(bound.get("dropout_p", 0.0)), bool(bound.get("is_causal", False)),
            attn_mask=bound.get("attn_mask"), scale=bound.get("scale"))
    except (RuntimeError, TypeError, ValueError, NotImplementedError):
        return None
    return out


def training_attention_forward(amp: AutocastRules | None) -> Callable:
    """F.multi_head_attention_forward whose inner calls to scaled_dot_product_attention and
    linear go through `fused_attention` and the autocast rules: a torch-function mode does not
    see calls nested in a function it handles, so the function is re-bound to globals that
    route them (a copy: torch's module stays untouched for other threads)."""
    original = F.multi_head_attention_forward

    def attention(*args: Any, **kwargs: Any) -> torch.Tensor:
        if amp is not None:
            args, kwargs = amp.cast(F.scaled_dot_product_attention, args, kwargs)
        out = fused_attention(args, kwargs)
        return out if out is not None else F.scaled_dot_product_attention(*args, **kwargs)

    def linear(*args: Any, **kwargs: Any) -> torch.Tensor:
        if amp is not None:
            args, kwargs = amp.cast(F.linear, args, kwargs)
        return F.linear(*args, **kwargs)

    overlay = {**original.__globals__, "scaled_dot_product_attention": attention,
               "linear": linear}
    rebound = types.FunctionType(original.__code__, overlay, original.__name__,
                                 original.__defaults__, original.__closure__)
    rebound.__kwdefaults__ = original.__kwdefaults__
    return rebound
