"""Two inspections side by side: which layers were inserted, removed or changed, and why a
Linear's input size moved ("320 = 20×4×4 → 512 = 32×4×4").

Rows are aligned by a sequence alignment over their keys (path and kind), so a block
inserted in the middle shows as inserted rows, not as every later row changed. Inside a
stretch the two models name differently (cnn's 'pooling' is resnet's 'mp'), rows are paired
again by type, so a renamed MaxPool2d is one changed row, not a removal plus an insertion.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

from tui_nn.shapes.records import FlattenCheck, Inspection, LayerRow

SAME, CHANGED, INSERTED, REMOVED = "same", "changed", "inserted", "removed"


@dataclass
class DiffRow:
    """One aligned row: `a` only (removed in B), `b` only (inserted in B), or both."""

    a: LayerRow | None
    b: LayerRow | None
    status: str  # SAME | CHANGED | INSERTED | REMOVED
    changed: list[str] = field(default_factory=list)  # what differs, as _pair names it

    @property
    def path(self) -> str:
        a, b = self.a, self.b
        if a is not None and b is not None and (a.path or a.name) != (b.path or b.name):
            return f"{a.path or a.name} → {b.path or b.name}"
        row = b if b is not None else a
        return row.path or row.name  # type: ignore[union-attr]

    @property
    def depth(self) -> int:
        row = self.b if self.b is not None else self.a
        return row.depth  # type: ignore[union-attr]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "status": self.status, "changed": self.changed,
                "a": _row_dict(self.a), "b": _row_dict(self.b)}


@dataclass
class FeatureChange:
    """A Linear fed by a flatten whose input size differs between A and B."""

    path: str  # B's Linear path (A's when B has none)
    a: FlattenCheck | None
    b: FlattenCheck | None

    @property
    def text(self) -> str:
        return f"{_check_arith(self.a)} → {_check_arith(self.b)}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "text": self.text,
                "a": self.a.to_dict() if self.a else None,
                "b": self.b.to_dict() if self.b else None}


@dataclass
class InspectionDiff:
    a: Inspection
    b: Inspection
    rows: list[DiffRow]
    first_output_change: DiffRow | None
    features: list[FeatureChange]

    @property
    def counts(self) -> dict[str, int]:
        out = {SAME: 0, CHANGED: 0, INSERTED: 0, REMOVED: 0}
        for row in self.rows:
            out[row.status] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        first = self.first_output_change
        return {"a": _side_dict(self.a), "b": _side_dict(self.b),
                "rows": [r.to_dict() for r in self.rows], "counts": self.counts,
                "first_output_change": first.path if first is not None else None,
                "features": [f.to_dict() for f in self.features]}


def diff_inspections(a: Inspection, b: Inspection) -> InspectionDiff:
    """Align `a.rows` with `b.rows` (both honour their depth limit) and compare them."""
    rows = align_rows(a.rows, b.rows)
    first = next((r for r in rows if r.status == CHANGED and "output" in r.changed
                  and r.depth > 0), None)
    return InspectionDiff(a, b, rows, first, feature_changes(a.checks, b.checks))


def align_rows(rows_a: list[LayerRow], rows_b: list[LayerRow]) -> list[DiffRow]:
    return _align(rows_a, rows_b, _key, _align_by_type)


def _align_by_type(rows_a: list[LayerRow], rows_b: list[LayerRow]) -> list[DiffRow]:
    """A stretch whose names differ: pair rows of the same type and depth in order."""
    return _align(rows_a, rows_b, lambda r: (r.type, r.depth), lambda xs, ys: [
        *(DiffRow(x, None, REMOVED) for x in xs), *(DiffRow(None, y, INSERTED) for y in ys)])


def _align(rows_a: list[LayerRow], rows_b: list[LayerRow], key: Callable[[LayerRow], Any],
           unmatched: Callable[[list[LayerRow], list[LayerRow]], list[DiffRow]]
           ) -> list[DiffRow]:
    """Rows whose keys match are paired; each stretch between them goes to unmatched."""
    # autojunk off: in a 1,000-row decoder 'attn' rows are frequent, not junk.
    matcher = difflib.SequenceMatcher(None, [key(r) for r in rows_a], [key(r) for r in rows_b],
                                      autojunk=False)
    out: list[DiffRow] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        xs, ys = rows_a[i1:i2], rows_b[j1:j2]
        out.extend(map(_pair, xs, ys) if tag == "equal" else unmatched(xs, ys))
    return out


def _key(row: LayerRow) -> tuple[str, str]:
    # The roots are two different classes at the same place: always paired.
    return ("", "root") if row.depth == 0 else (row.path, row.kind)


def _pair(a: LayerRow, b: LayerRow) -> DiffRow:
    changed = [name for name, x, y in (
        ("type", a.type, b.type), ("output", a.output_shapes, b.output_shapes),
        ("params", a.params, b.params), ("mult_adds", a.mult_adds, b.mult_adds),
        ("saved_bytes", a.saved_bytes, b.saved_bytes)) if x != y]
    if a.depth == 0:  # two models: the root's class name differs by definition
        changed = [c for c in changed if c != "type"]
    return DiffRow(a, b, CHANGED if changed else SAME, changed)


def feature_changes(checks_a: list[FlattenCheck], checks_b: list[FlattenCheck]
                    ) -> list[FeatureChange]:
    """Every Linear fed by a flatten whose input size differs, paired in order."""
    out: list[FeatureChange] = []
    by_path = {c.path: c for c in checks_b}
    unpaired_b = [c for c in checks_b if c.path not in {x.path for x in checks_a}]
    for check in checks_a:
        other = by_path.get(check.path) or (unpaired_b.pop(0) if unpaired_b else None)
        if other is None or other.got != check.got:
            out.append(FeatureChange(other.path if other else check.path, check, other))
    out.extend(FeatureChange(c.path, None, c) for c in unpaired_b)
    return out


def _check_arith(check: FlattenCheck | None) -> str:
    """'320 = 20×4×4', or 'no flatten' for the side without one."""
    if check is None:
        return "no flatten"
    if check.factors is None or len(check.factors) < 2:
        return str(check.got)
    return f"{check.got} = {'×'.join(str(f) for f in check.factors)}"


def _row_dict(row: LayerRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"path": row.path, "type": row.type, "kind": row.kind, "depth": row.depth,
            "input_shapes": [list(s) for s in row.input_shapes],
            "output_shapes": [list(s) for s in row.output_shapes], "params": row.params,
            "mult_adds": row.mult_adds, "flops": 2 * row.mult_adds,
            "saved_bytes": row.saved_bytes, "status": row.status}


def _side_dict(inspection: Inspection) -> dict[str, Any]:
    t = inspection.totals
    memory = inspection.memory
    return {"model": inspection.model_name, "ok": inspection.ok,
            "inputs": [{"shape": list(s), "dtype": d}
                       for s, d in zip(inspection.input_shapes, inspection.input_dtypes)],
            "totals": t.to_dict(),
            "memory": memory.to_dict() if memory is not None else None}
