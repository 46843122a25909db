"""Run a model once on the meta device and record every layer call.

Three observers, all removed in `finally`:
- forward pre/post hooks on every module: one row per call, nested by the call stack;
- a TorchFunctionMode: rows for the reshapes and pools a forward calls directly
  (`x.view(B, -1)`, `torch.flatten`, `torch.cat`, `F.max_pool2d`), and the provenance of every
  flattened tensor so the Linear it reaches can say where its in_features come from;
- a TorchDispatchMode: multiply-adds of every aten op (mm, conv, bmm, attention), credited to
  every row on the call stack, so functional matmuls inside an attention block count too.

Modes rather than patching `torch.Tensor.view`: modes are thread-local, so a training thread
running next to the inspector (the TUI does that) never sees them. For the same reason, and
because it would be one more Python hop per op, there is no `with torch.device("meta")` around
the forward: the function observer itself puts tensor constructors without a device
(`torch.zeros(B, 10)` in a forward) on meta.

Meta tensors carry shapes and dtypes but no storage, so a 70B-parameter model traces in
seconds without allocating its weights. A module that cannot run on meta (it reads values:
`.item()`, `nonzero`) is re-run on CPU with random weights, and the row says so.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors
from torch.utils._python_dispatch import TorchDispatchMode

from tui_nn.fmt import fmt_bytes
from tui_nn.modelmode import in_mode
from tui_nn.shapes.arithmetic import function_formulas, module_formulas
from tui_nn.shapes.checks import (FlattenOrigin, classify_flatten, diagnose_error,
                                  is_meta_limitation, linear_check, runs_torch_forward,
                                  validate_function, validate_module)
from tui_nn.shapes.records import Diagnosis, FlattenCheck, LayerRow, Shape
from tui_nn.shapes.trainstep import (AutocastRules, SavedTensors, fused_attention,
                                     training_attention_forward)
from tui_nn.shapes.uncounted import NotCounted, UncountedTally, category_of, uncounted_entry
from tui_nn.torchpatch.flopformulas import flop_registry
from tui_nn.torchpatch.metacache import MetaOpCache, cached_call, is_functional
from tui_nn.torchpatch.nodynamo import no_dynamo_import
from tui_nn.torchpatch.nosympy import no_sympy_import

# The flop formulas torch's own FlopCounterMode uses (mm, addmm, bmm, conv, sdpa), by the id
# of the op packet: packets hash in Python, and they live as long as the process.
_FLOP_REGISTRY = {id(packet): formula for packet, formula in flop_registry().items()}

F = torch.nn.functional

# Functions that get their own row when a model's forward calls them.
_RESHAPES: dict[Any, str] = {
    torch.Tensor.view: "Tensor.view", torch.Tensor.reshape: "Tensor.reshape",
    torch.Tensor.flatten: "Tensor.flatten", torch.flatten: "torch.flatten",
    torch.reshape: "torch.reshape",
}
_RECORDED: dict[Any, str] = {
    **_RESHAPES,
    torch.cat: "torch.cat", torch.concat: "torch.concat", torch.concatenate: "torch.concatenate",
    **{getattr(F, n): f"F.{n}" for n in (
        "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
        "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
        "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
        "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
        "conv_transpose3d", "pad")},
}
# Reshapes: they may flatten (tracked for the Linear checks) and usually share their input's
# memory (not counted as activations).
RESHAPE_LABELS = set(_RESHAPES.values())

_CONSTRUCTORS = _device_constructors()
_META = torch.device("meta")

# A module materialised on CPU for the fallback must stay small: it is real memory.
CPU_FALLBACK_LIMIT_BYTES = 1 << 30


class _Abort(Exception):
    """Raised from a hook to stop the forward at a problem found before the layer ran."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(diagnosis.message)
        self.diagnosis = diagnosis


@dataclass
class _Frame:
    row: LayerRow
    module: nn.Module | None  # None for a function row


@dataclass
class TraceResult:
    rows: list[LayerRow]
    checks: list[FlattenCheck]
    diagnosis: Diagnosis | None
    uncalled: list[str]
    needs_cpu: nn.Module | None = None  # failed only because it cannot run on meta
    meta_error: str = ""
    notes: list[str] = field(default_factory=list)
    saved_bytes: int = 0  # training traces: what autograd saves for backward, storages once
    amp_weight_copies: int = 0  # of which autocast's low-precision copies of the weights
    not_counted: list[NotCounted] = field(default_factory=list)  # ops with no formula


def tensors_in(obj: Any, found: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """Tensors inside nested tuples / lists / dicts (a layer's args or outputs), in order.
    A list filled in place, not a generator: this runs twice per layer call."""
    found = [] if found is None else found
    if isinstance(obj, torch.Tensor):
        found.append(obj)
        return found
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (tuple, list)) \
        else ()
    for item in items:
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif isinstance(item, (tuple, list, dict)):
            tensors_in(item, found)
    return found


def _shapes(tensors: list[torch.Tensor]) -> list[Shape]:
    return [tuple(t.shape) for t in tensors]


def _nbytes(tensors: list[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _fmt_arg(a: Any) -> str:
    if isinstance(a, torch.Tensor):
        return "x"
    if isinstance(a, (list, tuple)) and any(isinstance(t, torch.Tensor) for t in a):
        return "[" + ", ".join(_fmt_arg(t) for t in a) + "]"
    return repr(a)


# Keyword values equal to torch's defaults say nothing: 'max_pool2d(x, 2)', not the full list.
_DEFAULT_KWARGS = {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                   "return_indices": False, "count_include_pad": True, "divisor_override": None,
                   "groups": 1, "output_padding": 0, "mode": "constant", "value": None}


def _call_text(label: str, args: tuple, kwargs: dict) -> str:
    """'view(1, -1)' for x.view(1, -1): the call as the forward wrote it, tensors as x."""
    short = label.split(".")[-1]
    if label.startswith("Tensor."):
        args = args[1:]  # the tensor the method was called on
    parts = [_fmt_arg(a) for a in args]
    parts += [f"{k}={_fmt_arg(v)}" for k, v in kwargs.items()
              if not (k in _DEFAULT_KWARGS and _same(v, _DEFAULT_KWARGS[k]))]
    return f"{short}({', '.join(parts)})"


def _same(value: Any, default: Any) -> bool:
    if value is default:
        return True
    if isinstance(value, torch.Tensor) or default is None:
        return False
    if isinstance(value, (tuple, list)):  # padding=(0, 0)
        return bool(value) and all(type(v) is type(default) and v == default for v in value)
    return type(value) is type(default) and value == default


def _formulas_match(row: LayerRow) -> bool:
    if not row.output_shapes:
        return False
    out = row.output_shapes[0]
    values = tuple(f.value for f in row.arithmetic)
    return len(out) >= len(values) and out[len(out) - len(values):] == values


def _is_torch_internal(module: nn.Module) -> bool:
    # Reshapes inside torch's own layers (nn.Flatten, MultiheadAttention) are plumbing;
    # a model's own forward (zoo, torchvision, a user file) is what the learner wrote.
    return type(module).__module__.startswith("torch.")


class _FunctionObserver(TorchFunctionMode):
    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.t = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        t = self.t
        try:
            label = _RECORDED.get(func) if t.stack else None
            if not t.cpu_depth and func in _CONSTRUCTORS and kwargs.get("device") is None:
                kwargs["device"] = _META  # what torch.device("meta") would do
        except TypeError:  # an unhashable callable: nothing we record
            label = None
        if label is None:  # most calls: only a flatten's provenance may need carrying
            out = func(*args, **kwargs)
            if t.origins:
                t.after_function(None, args, out, None, None)
            return out
        owner = t.innermost_module()
        if owner is None or _is_torch_internal(owner.module):
            out = func(*args, **kwargs)
            reshape = label if label in RESHAPE_LABELS else None
            t.after_function(reshape, args, out, owner, None)
            return out
        return t.recorded_function(func, label, args, kwargs, owner)


class _TrainingStep(TorchFunctionMode):
    """For memory traces: autocast's casts, and attention through the fused kernel a real
    device would use (F.multi_head_attention_forward's own call to it included)."""

    def __init__(self, amp: AutocastRules | None) -> None:
        super().__init__()
        self.amp = amp
        self.attention_forward = training_attention_forward(amp)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.amp is not None:
            args, kwargs = self.amp.cast(func, args, kwargs)
        if func is F.scaled_dot_product_attention:
            out = fused_attention(args, kwargs)
            if out is not None:
                return out
        elif func is F.multi_head_attention_forward:
            return self.attention_forward(*args, **kwargs)
        return func(*args, **kwargs)


class _MultAddCounter(TorchDispatchMode):
    def __init__(self, tracer: Tracer) -> None:
        super().__init__()
        self.t = tracer

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # By default TorchDispatchMode wraps __torch_dispatch__ in torch._disable_dynamo, whose
        # first call imports torch._dynamo (1-2.5 s). An inspection is never compiled.
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _records_nothing(func):
            return func(*args, **kwargs)
        out, (mult_adds, uncounted) = cached_call(
            self.t.op_cache, func, args, kwargs,
            lambda result: _mult_adds(func, args, kwargs, result))
        if uncounted is not None:
            self.t.uncounted.add(uncounted)
        elif mult_adds and self.t.stack:
            for frame in self.t.stack:
                frame.row.mult_adds += mult_adds
        return out


_RECORDS_NOTHING: dict[int, bool] = {}  # by the op's id: ops live as long as the process


def _records_nothing(func: Any) -> bool:
    """Views and other aliasing ops without a formula or a not-counted category: nothing to
    count, list or reuse (the cache keeps only ops that make new tensors). Most of a
    transformer's ops (view, t, expand, transpose) are such."""
    known = _RECORDS_NOTHING.get(id(func))
    if known is None:
        known = (not is_functional(func) and id(func._overloadpacket) not in _FLOP_REGISTRY
                 and category_of(func) is None)
        _RECORDS_NOTHING[id(func)] = known
    return known


def _mult_adds(func: Any, args: tuple, kwargs: dict, out: Any) -> tuple[int, Any]:
    """(mult-adds, None), or (0, what the not-counted list says) for an op without formula."""
    formula = _FLOP_REGISTRY.get(id(func._overloadpacket))
    if formula is None:
        return 0, uncounted_entry(func, out)
    return formula(*args, **kwargs, out_val=out) // 2, None  # flops = 2 × mult-adds


class Tracer:
    """One traced forward of `model` on `inputs`. Use `run()` once."""

    def __init__(self, model: nn.Module, inputs: list[torch.Tensor], *,
                 kwargs: dict | None = None, mult_adds: bool = True, formulas: bool = True,
                 cpu_modules: tuple[nn.Module, ...] = (),
                 saved: SavedTensors | None = None, amp: AutocastRules | None = None) -> None:
        """saved: trace a training forward (train mode, autograd on) and credit every storage
        it saves for backward to the rows on the call stack; amp: autocast's casts on meta."""
        self.model = model
        self.inputs = inputs
        self.kwargs = kwargs or {}
        self.count_mult_adds = mult_adds
        self.formulas = formulas
        self.cpu_modules = cpu_modules
        self.rows: list[LayerRow] = []
        self.checks: list[FlattenCheck] = []
        self.stack: list[_Frame] = []
        self.named: list[tuple[str, nn.Module]] = []
        self.paths: dict[int, str] = {}
        self.called: set[int] = set()
        self._param_cache: dict[int, tuple[int, int]] = {}
        self.origins: dict[int, FlattenOrigin] = {}
        self._input_ids = {id(x) for x in inputs}
        self.cpu_depth = 0  # > 0 inside a CPU fallback's forward: constructors stay on CPU
        self.op_cache = MetaOpCache()
        self.uncounted = UncountedTally()
        self.saved = saved
        self.amp = amp
        if saved is not None:
            saved.on_new = self._credit_saved

    # -- helpers used by the observers --

    def innermost_module(self) -> _Frame | None:
        return next((f for f in reversed(self.stack) if f.module is not None), None)

    def lookup_origin(self, x: torch.Tensor) -> FlattenOrigin | None:
        origin = self.origins.get(id(x))
        return origin if origin is not None and origin.tensor is x else None

    def _params(self, module: nn.Module) -> tuple[int, int]:
        key = id(module)
        if key not in self._param_cache:
            self._param_cache[key] = count_params(module.parameters())
        return self._param_cache[key]

    def _credit_saved(self, nbytes: int) -> None:
        for frame in self.stack:
            frame.row.saved_bytes += nbytes

    def _new_row(self, **fields: Any) -> LayerRow:
        row = LayerRow(index=len(self.rows), depth=len(self.stack), **fields)
        self.rows.append(row)
        return row

    # -- module hooks --

    def pre_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        key = id(module)
        path = self.paths.get(key, "?")
        trainable, frozen = self._params(module)
        cls, extra = type(module).__name__, module.extra_repr()
        inputs = tensors_in((args, kwargs))
        row = self._new_row(
            path=path, name=path.rsplit(".", 1)[-1] if path else cls, type=cls, kind="module",
            detail=f"{cls}({extra})" if extra else "",
            input_shapes=_shapes(inputs), params_trainable=trainable,
            params_frozen=frozen, repeat=key in self.called,
            leaf=next(iter(module.children()), None) is None,
            device="cpu" if any(module is m for m in self.cpu_modules) else "meta")
        self.called.add(key)
        self.stack.append(_Frame(row, module))
        first = inputs[0] if inputs else None
        if self.formulas and first is not None:
            row.arithmetic = module_formulas(module, tuple(first.shape))
        if isinstance(module, nn.Linear) and first is not None and first.dim() > 0 \
                and runs_torch_forward(module):
            origin = self.lookup_origin(first)
            if origin is not None:
                self.checks.append(linear_check(path, module, first.shape[-1], origin))
        problem = validate_module(module, args, kwargs, self.lookup_origin,
                                  lambda x: id(x) in self._input_ids)
        if problem is not None:
            row.status = "error"
            problem.path = row.path  # the row's: inert (LayerRow)
            raise _Abort(problem)

    def post_hook(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        # A forward that swallowed a child's exception can leave frames behind: unwind to ours.
        while self.stack and self.stack[-1].module is not module:
            self.stack.pop()
        if not self.stack:
            return
        row = self.stack.pop().row
        outputs = tensors_in(output)
        row.output_shapes = _shapes(outputs)
        row.output_bytes = _nbytes(outputs)
        if row.arithmetic and not _formulas_match(row):
            row.arithmetic = []  # a subclass did something else: no explanation beats a wrong one

    # -- functions --

    def after_function(self, reshape_label: str | None, args: tuple, out: Any,
                       owner: _Frame | None, row: LayerRow | None) -> None:
        """Track flatten provenance (any caller, nn.Flatten included) and carry it through
        shape-keeping ops (relu, dropout) so 'Linear ← 20 × 4 × 4' survives them."""
        if not isinstance(out, torch.Tensor) or not args:
            return
        src = args[0]
        if reshape_label is not None and isinstance(src, torch.Tensor):
            is_flatten, factors = classify_flatten(tuple(src.shape), tuple(out.shape))
            if is_flatten:
                where = row.path if row is not None else (owner.row.path if owner else "")
                label = reshape_label if row is not None or owner is None else owner.row.type
                self.origins[id(out)] = FlattenOrigin(out, tuple(src.shape), factors, label, where)
                return
        if self.origins and isinstance(src, torch.Tensor) and out.shape == src.shape:
            origin = self.lookup_origin(src)
            if origin is not None and out is not src:
                self.origins[id(out)] = FlattenOrigin(out, origin.source_shape, origin.factors,
                                                      origin.op, origin.path)

    def recorded_function(self, func: Any, label: str, args: tuple, kwargs: dict,
                          owner: _Frame) -> Any:
        name = label.split(".")[-1]
        parent = owner.row.path
        row = self._new_row(
            path=f"{parent}.{name}" if parent else name, name=name, type=label, kind="function",
            detail=_call_text(label, args, kwargs),
            input_shapes=_shapes(tensors_in((args, kwargs))))
        if self.formulas:
            row.arithmetic = function_formulas(name, args, kwargs)
        problem = validate_function(name, args, kwargs)
        if problem is not None:
            row.status = "error"
            problem.path = row.path
            self.stack.append(_Frame(row, None))
            raise _Abort(problem)
        self.stack.append(_Frame(row, None))
        try:
            out = func(*args, **kwargs)
        except Exception as exc:
            if is_meta_limitation(exc):
                raise
            row.status = "error"
            diagnosis = diagnose_error(exc, label, row.input_shapes[:1], call=row.detail)
            diagnosis.path = row.path
            raise _Abort(diagnosis) from exc
        self.stack.pop()
        outputs = tensors_in(out)
        row.output_shapes = _shapes(outputs)
        row.output_bytes = _nbytes(outputs)
        self.after_function(label if label in RESHAPE_LABELS else None, args, out, owner, row)
        return out

    # -- the run --

    def _forward(self) -> None:
        with contextlib.ExitStack() as stack:
            if self.saved is None:
                stack.enter_context(torch.no_grad())
            else:
                stack.enter_context(torch.enable_grad())
                stack.enter_context(self.saved.hooks())
                stack.enter_context(_TrainingStep(self.amp))  # below the observer
            stack.enter_context(no_dynamo_import())
            stack.enter_context(no_sympy_import())
            stack.enter_context(_FunctionObserver(self))
            if self.count_mult_adds:
                stack.enter_context(_MultAddCounter(self))
            self.model(*self.inputs, **self.kwargs)

    def _uncalled(self) -> list[str]:
        model = self.model
        # A ModuleList is never called itself: only modules none of whose parts ran count.
        # Torch's own layers use their children's weights directly (MultiheadAttention's
        # out_proj): a child of a called torch layer is not unused either.
        skip = {id(m) for c in self.cpu_modules for m in c.modules()}
        skip.update(id(child) for _, m in self.named
                    if id(m) in self.called and _is_torch_internal(m)
                    for child in m.modules())
        used = _used_subtrees(model, self.called)
        return [name for name, m in self.named if id(m) not in skip and id(m) not in used]

    def run(self) -> TraceResult:
        model = self.model
        self.named = list(model.named_modules())  # one walk of the tree for every use below
        self.paths = {id(module): name for name, module in self.named}
        self._param_cache = _subtree_params(model)
        patched = [_patch_cpu_forward(m, self) for m in self.cpu_modules]
        handles = []
        diagnosis: Diagnosis | None = None
        needs_cpu: nn.Module | None = None
        meta_error = ""
        try:
            for _, module in self.named:
                handles.append(module.register_forward_pre_hook(self.pre_hook, with_kwargs=True))
                handles.append(module.register_forward_hook(self.post_hook, with_kwargs=True))
            try:
                # BatchNorm with batch 1 and dropout: trace what inference does, unless the
                # memory a training step needs is the question.
                with in_mode(model, training=self.saved is not None):
                    self._forward()
            except _Abort as abort:
                diagnosis = abort.diagnosis
            except Exception as exc:  # noqa: BLE001 - any failure becomes a diagnosis
                frame = self.innermost_module()
                failing = self.stack[-1] if self.stack else None
                if is_meta_limitation(exc) and frame is not None \
                        and not any(frame.module is m for m in self.cpu_modules):
                    needs_cpu = frame.module
                    meta_error = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                if failing is not None:
                    failing.row.status = "error"
                    diagnosis = diagnose_error(exc, failing.row.type, failing.row.input_shapes,
                                               call=failing.row.detail)
                    diagnosis.path = failing.row.path
                else:
                    diagnosis = diagnose_error(exc, type(model).__name__,
                                               [tuple(x.shape) for x in self.inputs])
        finally:
            for handle in handles:
                handle.remove()
            for undo in patched:
                undo()
        for frame in self.stack:
            if frame.row.status == "ok":
                frame.row.status = "unfinished"
        self.stack.clear()
        self.origins.clear()  # drop the tensor references
        uncalled = self._uncalled() if diagnosis is None else []
        return TraceResult(self.rows, self.checks, diagnosis, uncalled, needs_cpu, meta_error,
                           not_counted=self.uncounted.records())


def count_params(params: Iterator[nn.Parameter]) -> tuple[int, int]:
    trainable = frozen = 0
    for p in params:
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return trainable, frozen


class _Shared(Exception):
    pass


def _subtree_params(model: nn.Module) -> dict[int, tuple[int, int]]:
    """(trainable, frozen) parameters of every module's subtree in one walk: each module's
    own plus its children's sums. A parameter or module reachable twice (tied weights) would
    be summed twice: then {} and each module counts its own `parameters()`, which dedups."""
    counts: dict[int, tuple[int, int]] = {}
    seen: set[int] = set()

    def visit(module: nn.Module) -> tuple[int, int]:
        if id(module) in seen:
            raise _Shared
        seen.add(id(module))
        own = list(module.parameters(recurse=False))
        if any(id(p) in seen for p in own):
            raise _Shared
        seen.update(id(p) for p in own)
        trainable, frozen = count_params(iter(own))
        for child in module.children():
            t, f = visit(child)
            trainable, frozen = trainable + t, frozen + f
        counts[id(module)] = (trainable, frozen)
        return trainable, frozen

    try:
        visit(model)
    except _Shared:
        return {}
    return counts


def _used_subtrees(model: nn.Module, called: set[int]) -> set[int]:
    """Ids of the modules that ran or hold a module that ran, in one walk."""
    used: set[int] = set()

    def visit(module: nn.Module, seen: set[int]) -> bool:
        if id(module) in seen:
            return id(module) in used
        seen.add(id(module))
        ran = id(module) in called
        for child in module.children():
            ran = visit(child, seen) or ran
        if ran:
            used.add(id(module))
        return ran

    visit(model, set())
    return used


# --- the CPU fallback ------------------------------------------------------------------------

def _materialise(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if t.dtype.is_floating_point:
        return torch.randn(t.shape, dtype=t.dtype, generator=generator)
    return torch.zeros(t.shape, dtype=t.dtype)  # index 0 is valid for any embedding


def _tree_map(fn: Any, obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple (PackedSequence)
        return type(obj)(*(_tree_map(fn, o) for o in obj))
    if isinstance(obj, (tuple, list)):
        return type(obj)(_tree_map(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: _tree_map(fn, v) for k, v in obj.items()}
    return obj


def module_bytes(module: nn.Module) -> int:
    return _nbytes([*module.parameters(), *module.buffers()])


def _patch_cpu_forward(module: nn.Module, tracer: Tracer):
    """Make `module(...)` run a CPU copy of it on random inputs; returns the undo function."""
    cpu_copy = copy.deepcopy(module).to_empty(device="cpu")  # before hooks exist: copy has none
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in cpu_copy.parameters():
            if p.dtype.is_floating_point:
                p.copy_(torch.randn(p.shape, dtype=p.dtype, generator=generator) * 0.05)
            else:
                p.zero_()
        for b in cpu_copy.buffers():
            if b.dtype.is_floating_point:
                b.fill_(1.0)  # running_var must stay positive
            else:
                b.zero_()

    def forward(*args: Any, **kwargs: Any) -> Any:
        def to_cpu(t: torch.Tensor) -> torch.Tensor:
            return _materialise(t, generator) if t.device.type == "meta" else t

        tracer.cpu_depth += 1
        try:
            with torch.device("cpu"):
                out = cpu_copy(*_tree_map(to_cpu, args), **_tree_map(to_cpu, kwargs))
        finally:
            tracer.cpu_depth -= 1
        return _tree_map(lambda t: torch.empty_like(t, device="meta"), out)

    had_own = "forward" in module.__dict__
    original = module.__dict__.get("forward")
    module.forward = forward  # instance attribute shadows the class's forward

    def undo() -> None:
        if had_own:
            module.forward = original
        else:
            del module.forward
    return undo


# --- meta copies of built models -------------------------------------------------------------

def is_on_meta(model: nn.Module) -> bool:
    tensors = [*model.parameters(), *model.buffers()]
    return bool(tensors) and all(t.device.type == "meta" for t in tensors)


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` whose parameters and buffers live on meta: the weights are not copied.

    deepcopy consults its memo first, so pre-seeding it with a meta twin of every parameter
    and buffer keeps deepcopy from ever touching their storage.
    """
    memo: dict[int, Any] = {}
    for p in model.parameters():
        twin = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
        memo[id(p)] = twin
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def make_inputs(shapes: list[Shape], dtypes: list[torch.dtype]) -> list[torch.Tensor]:
    return [torch.empty(shape, dtype=dtype, device="meta") for shape, dtype in zip(shapes, dtypes)]


def trace(model: nn.Module, inputs: list[torch.Tensor], *, mult_adds: bool = True,
          formulas: bool = True, max_cpu_fallbacks: int = 8, training: bool = False,
          amp_dtype: torch.dtype | None = None) -> TraceResult:
    """Trace, re-running with CPU fallbacks for modules that cannot run on meta.

    training: a training forward whose saved-for-backward bytes land in `saved_bytes` (the
    result's and every row's); amp_dtype: under emulated autocast (bfloat16 / float16).
    """
    cpu_modules: list[nn.Module] = []
    notes: list[str] = []
    for _ in range(max_cpu_fallbacks + 1):
        saved = SavedTensors(exclude=[*model.parameters(), *model.buffers()]) \
            if training else None
        amp = AutocastRules(amp_dtype) if amp_dtype is not None else None
        result = Tracer(model, inputs, mult_adds=mult_adds, formulas=formulas,
                        cpu_modules=tuple(cpu_modules), saved=saved, amp=amp).run()
        if saved is not None:
            result.saved_bytes = saved.bytes
            if amp is not None:
                result.amp_weight_copies = saved.bytes_of(amp.weight_copies)
            saved.release()
        module = result.needs_cpu
        if module is None:
            break
        size = module_bytes(module)
        path = next((n for n, m in model.named_modules() if m is module), "?") or "(model)"
        if size > CPU_FALLBACK_LIMIT_BYTES:
            notes.append(f"{path} ({type(module).__name__}) cannot run on meta "
                         f"({result.meta_error}) and is too big ({fmt_bytes(size)}) to "
                         f"run on CPU")
            break
        cpu_modules.append(module)
        notes.append(f"{path} ({type(module).__name__}) ran on CPU with random weights: it cannot "
                     f"run on the meta device ({result.meta_error})")
    result.notes = notes
    return result
