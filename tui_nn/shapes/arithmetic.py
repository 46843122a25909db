"""Output-size arithmetic for conv / pool / pad layers, written out with the numbers filled in.

`H_out = ⌊(H_in + 2p − d(k−1) − 1)/s⌋ + 1 = ⌊(28 + 0 − 4 − 1)/1⌋ + 1 = 24` is what a learner
needs to see to believe the 320 in `Linear(320, 10)`. The same functions decide, before a
layer runs, whether its input is too small (a result below 1), so the diagnosis can say so.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from tui_nn.shapes.records import Formula

DIM_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

_CONV_RULE = "⌊(D_in + 2p − d(k−1) − 1)/s⌋ + 1"
_CONV_RULE_CEIL = "⌈(D_in + 2p − d(k−1) − 1)/s⌉ + 1"
_AVG_RULE = "⌊(D_in + 2p − k)/s⌋ + 1"
_AVG_RULE_CEIL = "⌈(D_in + 2p − k)/s⌉ + 1"
_TCONV_RULE = "(D_in − 1)·s − 2p + d(k−1) + op + 1"


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    """`value` per spatial dim: 3, (3,) and (3, 3) all give (3, 3) for n=2."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return tuple(int(v) for v in (values * n if len(values) == 1 else values))


def _names(n: int) -> tuple[str, ...]:
    return DIM_NAMES.get(n, tuple(f"S{i}" for i in range(n)))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def conv_formulas(spatial: Sequence[int], kernel: Any, stride: Any = 1, padding: Any = 0,
                  dilation: Any = 1) -> list[Formula]:
    """Conv1d/2d/3d: one Formula per spatial dim. `padding` may be 'same' or 'valid'."""
    n = len(spatial)
    k, s, d = _tuple(kernel, n), _tuple(stride, n), _tuple(dilation, n)
    if padding == "same":
        # PyTorch pads so the size is kept (stride must be 1 for 'same').
        return [Formula(name, f"{name}_in (padding='same')", "", size)
                for name, size in zip(_names(n), spatial)]
    p = _tuple(0 if padding == "valid" else padding, n)
    out = []
    for i, name in enumerate(_names(n)):
        span = d[i] * (k[i] - 1)
        value = (spatial[i] + 2 * p[i] - span - 1) // s[i] + 1
        numbers = f"⌊({spatial[i]} + {2 * p[i]} − {span} − 1)/{s[i]}⌋ + 1"
        out.append(Formula(name, _CONV_RULE.replace("D_in", f"{name}_in"), numbers, value))
    return out


def conv_transpose_formulas(spatial: Sequence[int], kernel: Any, stride: Any = 1,
                            padding: Any = 0, dilation: Any = 1,
                            output_padding: Any = 0) -> list[Formula]:
    n = len(spatial)
    k, s, d = _tuple(kernel, n), _tuple(stride, n), _tuple(dilation, n)
    p, op = _tuple(padding, n), _tuple(output_padding, n)
    out = []
    for i, name in enumerate(_names(n)):
        span = d[i] * (k[i] - 1)
        value = (spatial[i] - 1) * s[i] - 2 * p[i] + span + op[i] + 1
        numbers = f"({spatial[i]} − 1)·{s[i]} − {2 * p[i]} + {span} + {op[i]} + 1"
        out.append(Formula(name, _TCONV_RULE.replace("D_in", f"{name}_in"), numbers, value))
    return out


def pool_formulas(kind: str, spatial: Sequence[int], kernel: Any, stride: Any = None,
                  padding: Any = 0, dilation: Any = 1, ceil_mode: bool = False) -> list[Formula]:
    """MaxPool (kind='max', has dilation) and AvgPool (kind='avg', no dilation)."""
    n = len(spatial)
    k = _tuple(kernel, n)
    s = k if stride is None or stride == () or stride == [] else _tuple(stride, n)
    p, d = _tuple(padding, n), _tuple(dilation, n)
    out = []
    for i, name in enumerate(_names(n)):
        if kind == "max":
            span = d[i] * (k[i] - 1)
            top = spatial[i] + 2 * p[i] - span - 1
            inner = f"({spatial[i]} + {2 * p[i]} − {span} − 1)/{s[i]}"
            rule = _CONV_RULE_CEIL if ceil_mode else _CONV_RULE
        else:
            top = spatial[i] + 2 * p[i] - k[i]
            inner = f"({spatial[i]} + {2 * p[i]} − {k[i]})/{s[i]}"
            rule = _AVG_RULE_CEIL if ceil_mode else _AVG_RULE
        if ceil_mode:
            value = _ceil_div(top, s[i]) + 1
            numbers = f"⌈{inner}⌉ + 1"
            # PyTorch drops a last window that would start inside the right padding.
            if (value - 1) * s[i] >= spatial[i] + p[i]:
                value -= 1
                numbers += " − 1 (last window would start in the padding)"
        else:
            value = top // s[i] + 1
            numbers = f"⌊{inner}⌋ + 1"
        out.append(Formula(name, rule.replace("D_in", f"{name}_in"), numbers, value))
    return out


def adaptive_formulas(spatial: Sequence[int], output_size: Any) -> list[Formula]:
    n = len(spatial)
    sizes = output_size if isinstance(output_size, (tuple, list)) else [output_size] * n
    if len(sizes) == 1 and n > 1:
        sizes = list(sizes) * n
    out = []
    for name, size_in, size_out in zip(_names(n), spatial, sizes):
        value = size_in if size_out is None else int(size_out)
        out.append(Formula(name, "output_size (adaptive pooling picks the windows)", "", value))
    return out


def pad_formulas(spatial: Sequence[int], pad: Sequence[int]) -> list[Formula]:
    """`pad` in F.pad order: (last_before, last_after, second_last_before, ...)."""
    n = len(spatial)
    names = _names(n)
    befores = [0] * n
    afters = [0] * n
    for j in range(len(pad) // 2):
        dim = n - 1 - j
        if dim < 0:
            break
        befores[dim], afters[dim] = int(pad[2 * j]), int(pad[2 * j + 1])
    out = []
    for i, name in enumerate(names):
        if befores[i] == afters[i] == 0 and len(pad) // 2 <= n - 1 - i:
            continue  # this dim is not padded: nothing to explain
        value = spatial[i] + befores[i] + afters[i]
        out.append(Formula(name, f"{name}_in + p_before + p_after",
                           f"{spatial[i]} + {befores[i]} + {afters[i]}", value))
    return out


# --- modules -------------------------------------------------------------------------------

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TCONV = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_MAXPOOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVGPOOL = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
             nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
_PAD = (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d, nn.ReflectionPad1d,
        nn.ReflectionPad2d, nn.ReflectionPad3d, nn.ReplicationPad1d, nn.ReplicationPad2d,
        nn.ReplicationPad3d, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.CircularPad1d,
        nn.CircularPad2d, nn.CircularPad3d)


_SPATIAL = _CONV + _TCONV + _MAXPOOL + _AVGPOOL + _ADAPTIVE + _PAD


def spatial_rank(module: nn.Module) -> int | None:
    """How many trailing spatial dims the layer works on (2 for Conv2d), None if not spatial."""
    return rank_suffix(module) if isinstance(module, _SPATIAL) else None


def rank_suffix(module: nn.Module) -> int | None:
    """1, 2 or 3 from torch's '...1d/2d/3d' class name, else None."""
    for cls in type(module).__mro__:  # subclasses keep torch's '...2d' name somewhere up the MRO
        suffix = cls.__name__[-2:].lower()
        if suffix in ("1d", "2d", "3d"):
            return int(suffix[0])
    return None


def module_formulas(module: nn.Module, input_shape: Sequence[int]) -> list[Formula]:
    """The size arithmetic for a conv/pool/pad module given its input shape; [] otherwise."""
    n = spatial_rank(module)
    if n is None or len(input_shape) < n:
        return []
    spatial = tuple(input_shape[-n:])
    m: Any = module
    if isinstance(module, _CONV):
        return conv_formulas(spatial, m.kernel_size, m.stride, m.padding, m.dilation)
    if isinstance(module, _TCONV):
        return conv_transpose_formulas(spatial, m.kernel_size, m.stride, m.padding,
                                       m.dilation, m.output_padding)
    if isinstance(module, _MAXPOOL):
        return pool_formulas("max", spatial, m.kernel_size, m.stride, m.padding, m.dilation,
                             m.ceil_mode)
    if isinstance(module, _AVGPOOL):
        return pool_formulas("avg", spatial, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode)
    if isinstance(module, _ADAPTIVE):
        return adaptive_formulas(spatial, m.output_size)
    if isinstance(module, _PAD):
        return pad_formulas(spatial, m.padding)
    return []


# --- functional calls (F.max_pool2d(x, 2) in a forward) -------------------------------------

# Positional parameter names after `input`, as in torch.nn.functional's signatures.
_PARAMS_BY_OP = {
    "conv": ("weight", "bias", "stride", "padding", "dilation", "groups"),
    "conv_transpose": ("weight", "bias", "stride", "padding", "output_padding", "groups",
                       "dilation"),
    "max_pool": ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg_pool": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                 "divisor_override"),
    "adaptive_avg_pool": ("output_size",),
    "adaptive_max_pool": ("output_size",),
}
FUNCTION_PARAMS: dict[str, tuple[str, ...]] = {
    **{f"{op}{n}d": params for op, params in _PARAMS_BY_OP.items() for n in (1, 2, 3)},
    "avg_pool1d": _PARAMS_BY_OP["avg_pool"][:-1],  # the one without divisor_override
    "pad": ("pad", "mode", "value"),
}


def bind_call(name: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Name the arguments of a functional call: {'input': x, 'kernel_size': 2, ...}."""
    names = ("input", *FUNCTION_PARAMS.get(name, ()))
    bound = dict(zip(names, args))
    bound.update(kwargs)
    return bound


def cat_formula(tensors: Sequence[Any], dim: int = 0) -> list[Formula]:
    """torch.cat: the joined dim is the sum of the parts (Inception: 16 + 24 + 24 + 24 = 88)."""
    shapes = [tuple(t.shape) for t in tensors if hasattr(t, "shape") and len(t.shape)]
    if not shapes:
        return []
    rank = len(shapes[0])
    d = dim % rank
    # (N, C, H, W) and (N, C, L) are the layouts where dim 1 is 'channels'.
    name = "C" if d == 1 and rank in (3, 4, 5) else f"dim{d}"
    sizes = [s[d] for s in shapes if len(s) == rank]
    return [Formula(name, "sum of the inputs' sizes", " + ".join(map(str, sizes)), sum(sizes))]


def function_formulas(name: str, args: tuple, kwargs: dict) -> list[Formula]:
    """Arithmetic for F.conv*/F.*pool*/F.pad/torch.cat called directly in a model's forward."""
    if name in ("cat", "concat", "concatenate"):
        tensors = args[0] if args else kwargs.get("tensors", ())
        dim = args[1] if len(args) > 1 else kwargs.get("dim", kwargs.get("axis", 0))
        return cat_formula(tensors, int(dim)) if isinstance(tensors, (list, tuple)) else []
    if name not in FUNCTION_PARAMS:
        return []
    b = bind_call(name, args, kwargs)
    x = b.get("input")
    shape = tuple(getattr(x, "shape", ()))
    if name == "pad":
        pad = b.get("pad", ())
        n = min(len(pad) // 2, max(len(shape) - 2, 1))
        return pad_formulas(shape[-n:], pad) if n and len(shape) >= n else []
    n = int(name[-2])
    if len(shape) < n:
        return []
    spatial = shape[-n:]
    if name.startswith("conv_transpose"):
        w = b.get("weight")
        return conv_transpose_formulas(spatial, tuple(w.shape[2:]), b.get("stride", 1),
                                       b.get("padding", 0), b.get("dilation", 1),
                                       b.get("output_padding", 0))
    if name.startswith("conv"):
        w = b.get("weight")
        return conv_formulas(spatial, tuple(w.shape[2:]), b.get("stride", 1),
                             b.get("padding", 0), b.get("dilation", 1))
    if name.startswith("max_pool"):
        return pool_formulas("max", spatial, b["kernel_size"], b.get("stride"),
                             b.get("padding", 0), b.get("dilation", 1),
                             bool(b.get("ceil_mode", False)))
    if name.startswith("avg_pool"):
        return pool_formulas("avg", spatial, b["kernel_size"], b.get("stride"),
                             b.get("padding", 0), 1, bool(b.get("ceil_mode", False)))
    if name.startswith("adaptive"):
        return adaptive_formulas(spatial, b["output_size"])
    return []
