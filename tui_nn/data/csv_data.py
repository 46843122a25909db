"""``csv:PATH``: a numeric table whose last column is the target (.csv or .csv.gz).

The task is read off the target column, the way the seed's diabetes.csv.gz is used:
  * only 0 and 1 (or any two integer values)  -> binary, y float (N, 1)
  * 3..20 distinct integers                    -> classification, y int64 (N,), ids 0..K-1
  * anything else                              -> regression, y float (N, 1)
A first row with any non-numeric cell is a header. Rows are split 80/20 with a seeded shuffle.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from pathlib import Path

import torch

from .base import Dataset, DataError
from .split import split_indices

MAX_CLASSES = 20
_DELIMITERS = (",", ";", "\t")


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DataError(f"CSV file not found: {path}")
    if path.is_dir():
        raise DataError(
            f"{path} is a folder; csv: expects a .csv or .csv.gz file (use folder:{path} for images)"
        )
    try:
        raw = path.read_bytes()
        # Decide by content, not by name: a .csv.gz renamed to .csv still loads.
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8-sig")
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text CSV file") from None


def _to_float(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _parse_rows(text: str, path: Path) -> tuple[list[str] | None, list[list[float]]]:
    """(header or None, numeric rows); errors name the file's own line numbers."""
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise DataError(f"CSV file {path} is empty")
    first = lines[0][1]
    delimiter = next((d for d in _DELIMITERS if d in first), ",")
    reader = csv.reader(io.StringIO("\n".join(line for _, line in lines)), delimiter=delimiter)
    records = [[cell.strip() for cell in row] for row in reader]
    width = len(records[0])
    if width < 2:
        raise DataError(
            f"CSV file {path} has {width} column; it needs at least 2 (features..., target last)"
        )
    header = None
    if any(_to_float(cell) is None for cell in records[0]):
        header = records[0]
        records, lines = records[1:], lines[1:]
        if not records:
            raise DataError(f"CSV file {path} has a header but no data rows")
    rows = []
    for (line_no, _), record in zip(lines, records):
        if len(record) != width:
            raise DataError(
                f"CSV file {path}, line {line_no}: {len(record)} columns, expected {width} like the first row"
            )
        values = []
        for col, cell in enumerate(record):
            value = _to_float(cell)
            if value is None:
                name = f" ({header[col]!r})" if header else ""
                raise DataError(
                    f"CSV file {path}, line {line_no}, column {col + 1}{name}: "
                    f"{cell!r} is not a number (every cell must be numeric)"
                )
            values.append(value)
        rows.append(values)
    return header, rows


def _target_task(y: torch.Tensor) -> tuple[str, torch.Tensor, int | None, tuple[str, ...] | None]:
    """(task, targets in the engine's layout, num_classes, labels) from a float column (N,)."""
    distinct = torch.unique(y)  # sorted
    values = distinct.tolist()
    labels = tuple(_format_label(v) for v in values)
    if set(values) <= {0.0, 1.0}:
        return "binary", y.unsqueeze(1), 2, ("0", "1")
    integral = all(v == round(v) for v in values)
    ids = torch.searchsorted(distinct, y)  # (N,) class ids 0..K-1 in sorted value order
    if integral and len(values) == 2:
        # A pair such as {1, 2} or {-1, 1} is still a yes/no target: map it to {0, 1} in order.
        return "binary", ids.float().unsqueeze(1), 2, labels
    if integral and 2 < len(values) <= MAX_CLASSES:
        return "classification", ids, len(values), labels
    return "regression", y.unsqueeze(1), None, None


def _format_label(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def load_csv(path: str | Path, *, seed: int = 0, **_: object) -> Dataset:
    """Features (N, F) float32 and the last column as target; see the module docstring."""
    path = Path(path).expanduser()
    header, rows = _parse_rows(_read_text(path), path)
    if len(rows) < 2:
        raise DataError(f"CSV file {path} has {len(rows)} data row; it needs at least 2 to split")
    table = torch.tensor(rows, dtype=torch.float64)  # (N, F + 1)
    x = table[:, :-1].float()  # (N, F)
    task, y, num_classes, labels = _target_task(table[:, -1].contiguous())
    if task != "classification":
        y = y.float()
    train_idx, val_idx = split_indices(len(rows), seed)
    n_features = x.shape[1]
    target_name = f" target {header[-1]!r}" if header else ""
    return Dataset(
        name=f"csv:{path.name}",
        task=task,
        train_x=x[train_idx],
        train_y=y[train_idx],
        val_x=x[val_idx],
        val_y=y[val_idx],
        input_shape=(n_features,),
        num_classes=num_classes,
        labels=labels,
        description=(
            f"{path}: {len(rows)} rows, {n_features} features,{target_name} {task} "
            f"(last column), 80/20 split"
        ),
    )
