"""The inspector's records: plain dataclasses, no formatting (renderers live in tui_nn.commands).

Keeping the trace results apart from how they are shown is torchinfo's lesson: the CLI
table, the JSON output and the TUI all read the same records.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tui_nn.textsafe import clean_line

Shape = tuple[int, ...]


def _inert(record: Any, *names: str) -> None:
    """The named fields of `record` (text, or lists of text) made inert in place, one line
    each: module and class names, extra_repr() and exception text are the model's code's
    words. Done at construction, once, for every view: the CLI table and sections, JSON, the
    app's inspector and the diff."""
    for name in names:
        value = getattr(record, name)
        many = isinstance(value, list)
        lines = [clean_line(v) for v in (value if many else (value,))]
        setattr(record, name, lines if many else lines[0])


@dataclass(frozen=True)
class Formula:
    """One output dimension worked out: symbolic rule, the rule with numbers, the result."""

    dim: str  # 'H', 'W', 'L', 'D'
    rule: str  # '⌊(H_in + 2p − d(k−1) − 1)/s⌋ + 1'
    numbers: str  # '⌊(28 + 0 − 4 − 1)/1⌋ + 1'
    value: int

    @property
    def text(self) -> str:
        if not self.numbers:  # adaptive pooling, padding='same': nothing to substitute
            return f"{self.dim}_out = {self.rule} = {self.value}"
        return f"{self.dim}_out = {self.rule} = {self.numbers} = {self.value}"


@dataclass
class LayerRow:
    """One module call (or one functional reshape/pool/cat) in forward order."""

    index: int
    path: str  # qualified module name; '' for the root; 'parent.flatten' for a function
    name: str  # last path component, or the class name for the root
    type: str  # 'Conv2d', 'Tensor.view', 'torch.cat', 'F.max_pool2d'
    depth: int  # 0 for the root module; children are one deeper
    kind: str = "module"  # 'module' | 'function'
    detail: str = ""  # 'Conv2d(1, 10, kernel_size=(5, 5))' / 'view(1, -1)'
    input_shapes: list[Shape] = field(default_factory=list)
    output_shapes: list[Shape] = field(default_factory=list)
    params_trainable: int = 0  # this module and its children
    params_frozen: int = 0
    mult_adds: int = 0  # this call, children included
    output_bytes: int = 0
    # What autograd saves for backward in this call, children included (memory traces only).
    saved_bytes: int = 0
    arithmetic: list[Formula] = field(default_factory=list)
    status: str = "ok"  # 'ok' | 'error' (failed here) | 'unfinished' (a child failed)
    repeat: bool = False  # the module was already called: its parameters are counted once
    leaf: bool = True  # a module without children (its outputs are real activations)
    device: str = "meta"  # 'cpu' when the module could not run on meta

    def __post_init__(self) -> None:
        _inert(self, "path", "name", "type", "detail")

    @property
    def params(self) -> int:
        return self.params_trainable + self.params_frozen

    def to_dict(self) -> dict[str, Any]:
        # Shallow: asdict() deep-copies every shape, which a 1,444-row 70B decoder feels.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["input_shapes"] = [list(s) for s in self.input_shapes]
        data["output_shapes"] = [list(s) for s in self.output_shapes]
        data["arithmetic"] = [f.text for f in self.arithmetic]
        data["params"] = self.params
        data["flops"] = 2 * self.mult_adds
        return data


@dataclass
class FlattenCheck:
    """At a Linear fed by a flatten: where its in_features come from, and whether they match.

    text: 'Linear(320) ← 20 × 4 × 4 = 320 ✓' or 'Linear(400) ← 16 × 4 × 4 = 256 ✗ expects 400'.
    """

    path: str  # the Linear's path
    in_features: int
    got: int  # features per row the Linear actually receives
    factors: Shape | None  # per-sample dims multiplied together; None if rows mix samples
    source_shape: Shape  # full shape before the flatten, batch included
    flatten_op: str  # 'Tensor.view' / 'torch.flatten' / 'Flatten'
    flatten_path: str  # the row that flattened
    ok: bool
    text: str
    problem: str = ""  # why it fails, '' when ok
    fix: str = ""

    def __post_init__(self) -> None:
        _inert(self, "path", "flatten_op", "flatten_path", "text", "problem", "fix")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["factors"] = list(self.factors) if self.factors is not None else None
        data["source_shape"] = list(self.source_shape)
        return data


@dataclass
class Diagnosis:
    """Why the forward pass stopped, where, and what to change."""

    path: str  # the failing module's path ('' = root), or the function row's path
    type: str  # 'Linear', 'Conv2d', 'Tensor.view', ...
    # 'linear_features' | 'flatten' (a Linear fed N×C×H×W) | 'channels' | 'features'
    # | 'too_small' | 'rank' | 'view' | 'dtype' | 'error' (anything we could not read)
    kind: str
    message: str  # 'Linear expects 400 features but gets 16 × 4 × 4 = 256'
    got: list[Shape] = field(default_factory=list)  # input shapes at the failing layer
    expected: str = ""  # '(*, 400)' / 'N×3×H×W'
    # ['use nn.Linear(256, 120)', 'feed 1×32×32 input']: joined with ', or '
    fixes: list[str] = field(default_factory=list)
    error: str = ""  # the original exception, one line ('' if caught before running)
    solvable: bool = False  # another input size could fix it: the solver is worth running
    # The model input it meant (batched), when the fix is to feed another layout: a
    # channels-last 1×28×28×1 given to a Conv2d(1, …) -> (1, 1, 28, 28).
    input_fix: Shape | None = None

    def __post_init__(self) -> None:
        _inert(self, "path", "type", "message", "expected", "fixes", "error")

    @property
    def fix(self) -> str:
        return ", or ".join(self.fixes)

    @property
    def text(self) -> str:
        return f"{self.message}: {self.fix}" if self.fixes else self.message

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["got"] = [list(s) for s in self.got]
        data["input_fix"] = list(self.input_fix) if self.input_fix is not None else None
        data["fix"] = self.fix
        data["text"] = self.text
        return data


@dataclass
class Totals:
    params: int = 0
    params_trainable: int = 0
    params_frozen: int = 0
    mult_adds: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0
    input_bytes: int = 0
    activation_bytes: int = 0  # outputs of leaf layers and copying functions, for the batch
    batch_size: int = 1

    @property
    def flops(self) -> int:
        return 2 * self.mult_adds  # the convention: a multiply-add is 2 floating-point ops

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["flops"] = self.flops
        return data


@dataclass
class SolverResult:
    """Square input sizes (all spatial dims equal) whose forward runs and checks pass."""

    sample_shape: Shape  # the per-sample shape the search started from, e.g. (1, 28, 28)
    working: list[int]  # spatial sizes that pass, ascending
    scanned: tuple[int, int]  # inclusive range tried
    complete: bool  # False when the time budget ran out before the whole range was tried

    @property
    def nearest(self) -> int | None:
        start = self.sample_shape[-1]
        return min(self.working, key=lambda s: (abs(s - start), s), default=None)

    @property
    def suggested(self) -> int | None:
        """The smallest size of the working run nearest the start: pools floor their sizes,
        so the run's smallest member is the exact fit (cnn: 28, not 31, when starting at 40)."""
        nearest = self.nearest
        if nearest is None:
            return None
        return next(a for a, b in self.ranges() if a <= nearest <= b)

    def shape_for(self, size: int) -> Shape:
        n_spatial = len(self.sample_shape) - 1
        return (self.sample_shape[0], *([size] * n_spatial))

    def ranges(self) -> list[tuple[int, int]]:
        """[28, 29, 30, 31, 40] -> [(28, 31), (40, 40)]."""
        out: list[tuple[int, int]] = []
        for s in self.working:
            if out and s == out[-1][1] + 1:
                out[-1] = (out[-1][0], s)
            else:
                out.append((s, s))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"sample_shape": list(self.sample_shape), "working": self.working,
                "nearest": self.nearest, "suggested": self.suggested,
                "scanned": list(self.scanned),
                "complete": self.complete}


@dataclass
class Inspection:
    """Everything `inspect_model` found; `.rows` honours the depth limit, `.all_rows` does not."""

    model_name: str
    input_shapes: list[Shape]
    input_dtypes: list[str]
    all_rows: list[LayerRow]
    totals: Totals
    checks: list[FlattenCheck]
    diagnosis: Diagnosis | None
    depth: int | None = None
    notes: list[str] = field(default_factory=list)
    solver: SolverResult | None = None
    uncalled: list[str] = field(default_factory=list)  # modules the forward never used
    memory: Any = None  # a shapes.memory.MemoryEstimate when training memory was asked for
    # Ops that ran with no mult-add formula (shapes.uncounted.NotCounted): never a silent 0.
    not_counted: list[Any] = field(default_factory=list)
    # With a memory estimate, if asked: shapes.fits.FitOption per lever (bf16, checkpoint, SGD).
    fits: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A path typed, or a factory's name; notes quote module names and exception text.
        _inert(self, "model_name", "notes", "uncalled")

    @property
    def rows(self) -> list[LayerRow]:
        if self.depth is None:
            return self.all_rows
        return [r for r in self.all_rows if r.depth <= self.depth]

    @property
    def ok(self) -> bool:
        return self.diagnosis is None and all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "inputs": [{"shape": list(s), "dtype": d}
                       for s, d in zip(self.input_shapes, self.input_dtypes)],
            "depth": self.depth,
            "ok": self.ok,
            "rows": [r.to_dict() for r in self.rows],
            "totals": self.totals.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None,
            "solver": self.solver.to_dict() if self.solver else None,
            "uncalled": self.uncalled,
            "notes": self.notes,
            "memory": self.memory.to_dict() if self.memory is not None else None,
            "not_counted": [n.to_dict() for n in self.not_counted],
            "fits": [f.to_dict() for f in self.fits],
        }
