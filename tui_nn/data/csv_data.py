"""``csv:PATH``: a table of numeric features whose last column is the target (.csv or .csv.gz).

The task is read off the target column, the way the seed's diabetes.csv.gz is used:
  * only 0 and 1 (or any two integer values)  -> binary, y float (N, 1)
  * 3..20 distinct integers                    -> classification, y int64 (N,), ids 0..K-1
  * any text ("cat", "dog", "bird")            -> class names: 2 names binary, more
                                                  classification; ids in sorted name order
  * anything else                              -> regression, y float (N, 1)
The names (or the integer values) become the dataset's labels, kept in the run's config.json.
A first row with a non-numeric feature cell is a header (so is a first row whose target alone
is text when every other target is a number). Rows are split 80/20 with a seeded shuffle.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from pathlib import Path

import torch

from .base import Dataset, DataError, printable
from .split import split_indices

MAX_CLASSES = 20
# Named classes ("cat", "dog") are classes whatever their count, up to this many.
MAX_NAMED_CLASSES = 1000
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


def _has_header(records: list[list[str]]) -> bool:
    """A first row with a non-numeric feature cell is a header; so is one whose only
    non-numeric cell is the target when every other row's target is a number."""
    first = records[0]
    if any(_to_float(cell) is None for cell in first[:-1]):
        return True
    if _to_float(first[-1]) is not None:
        return False
    rest = [row[-1] for row in records[1:] if row]
    return bool(rest) and all(_to_float(cell) is not None for cell in rest)


def _parse_rows(text: str, path: Path) -> tuple[list[str] | None, list[list[float]], list[str]]:
    """(header or None, numeric feature rows, target cells); errors name the file's lines."""
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
    if _has_header(records):
        header = records[0]
        records, lines = records[1:], lines[1:]
        if not records:
            raise DataError(f"CSV file {path} has a header but no data rows")
    rows, targets = [], []
    for (line_no, _), record in zip(lines, records):
        if len(record) != width:
            raise DataError(
                f"CSV file {path}, line {line_no}: {len(record)} columns, expected {width} like the first row"
            )
        values = []
        for col, cell in enumerate(record[:-1]):
            value = _to_float(cell)
            if value is None:
                name = f" ({header[col]!r})" if header else ""
                raise DataError(
                    f"CSV file {path}, line {line_no}, column {col + 1}{name}: "
                    f"{cell!r} is not a number (feature cells must be numeric; only the last "
                    "column, the target, may hold class names)"
                )
            values.append(value)
        if not record[-1]:
            raise DataError(f"CSV file {path}, line {line_no}: the target (last column) is empty")
        rows.append(values)
        targets.append(record[-1])
    return header, rows, targets


def _name_targets(cells: list[str], path: Path) -> tuple[str, torch.Tensor, int, tuple[str, ...]]:
    """Class names -> (task, targets, num_classes, labels); ids follow the names' sorted order."""
    labels = tuple(sorted(set(cells)))
    if len(labels) < 2:
        raise DataError(f"CSV file {path}: every row has the label {labels[0]!r}; a class "
                        "target needs at least 2 different labels")
    if len(labels) > max(MAX_NAMED_CLASSES, len(cells) // 2):
        raise DataError(f"CSV file {path}: the last column has {len(labels)} different text "
                        f"values in {len(cells)} rows, which looks like an identifier, not a "
                        "class; put the target in the last column")
    index = {name: i for i, name in enumerate(labels)}
    ids = torch.tensor([index[c] for c in cells], dtype=torch.int64)  # (N,)
    shown = tuple(printable(name) for name in labels)
    if len(labels) == 2:
        return "binary", ids.float().unsqueeze(1), 2, shown  # (N, 1): 1 = the second name
    return "classification", ids, len(labels), shown


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
    header, rows, cells = _parse_rows(_read_text(path), path)
    if len(rows) < 2:
        raise DataError(f"CSV file {path} has {len(rows)} data row; it needs at least 2 to split")
    x = torch.tensor(rows, dtype=torch.float64).float()  # (N, F)
    numbers = [_to_float(c) for c in cells]
    if all(v is not None for v in numbers):
        task, y, num_classes, labels = _target_task(torch.tensor(numbers, dtype=torch.float64))
    else:  # any text in the target column: every value is a class name
        task, y, num_classes, labels = _name_targets(cells, path)
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
