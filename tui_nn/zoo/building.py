"""`building_on(device)`: the context a model is constructed in.

On meta it differs from `with torch.device("meta")` in one way: weight initialisers
(`nn.init.*`, `Tensor.normal_`, `uniform_`, ...) return their meta tensor untouched. Meta
tensors have no values to initialise, and running the initialisers anyway is not free:
`Tensor.normal_` on meta goes through a `torch._disable_dynamo`-wrapped reference that
imports `torch._dynamo` (about 2 s) on first use. A 70B decoder builds in milliseconds this way.
Other Python meta kernels a constructor runs (`torch.log` of a meta tensor) would import it too:
`no_dynamo_import` covers them.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch.utils._device import DeviceContext

from tui_nn.torchpatch.nodynamo import no_dynamo_import
from tui_nn.torchpatch.nosympy import no_sympy_import

_init = torch.nn.init
# nn.init's public in-place initialisers and the tensor methods they end in.
_INITIALISERS = frozenset(
    {getattr(_init, n) for n in dir(_init) if n.endswith("_") and not n.startswith("_")
     and callable(getattr(_init, n))}
    | {torch.Tensor.normal_, torch.Tensor.uniform_, torch.Tensor.zero_, torch.Tensor.fill_,
       torch.Tensor.copy_, torch.Tensor.exponential_, torch.Tensor.random_,
       torch.Tensor.bernoulli_, torch.Tensor.cauchy_, torch.Tensor.log_normal_,
       torch.Tensor.geometric_, torch.Tensor.clamp_, torch.Tensor.mul_, torch.Tensor.div_,
       torch.Tensor.add_, torch.Tensor.sub_, torch.Tensor.erfinv_})


class _MetaBuild(DeviceContext):
    """torch.device('meta') whose initialisers are no-ops on meta tensors."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _INITIALISERS:
            # nn.init passes the tensor by keyword ('tensor=') to handle_torch_function.
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, torch.Tensor) and target.is_meta:
                return target
        return super().__torch_function__(func, types, args, kwargs)


@contextlib.contextmanager
def building_on(device: str | torch.device) -> Iterator[None]:
    """Construct a model under this: its tensors land on `device`, skipping init on meta."""
    device = torch.device(device)
    if device.type != "meta":
        with device:
            yield
        return
    with no_dynamo_import(), no_sympy_import(), _MetaBuild(device):
        yield
