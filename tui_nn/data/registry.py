"""Dataset names -> loaders, and ``load_dataset`` which turns any dataset spec into tensors.

A spec is a registry name (``digits``, ``mnist``...), or a prefixed form:
``csv:PATH`` (.csv / .csv.gz, last column = target), ``folder:PATH`` (class subfolders of
images), ``longrange:LEN`` and ``FILE.py:build`` (your own Dataset, streamed by the engine:
data/user_dataset.py). A bare path ending in .csv / .csv.gz, or naming an existing
folder, is read as if it had the prefix.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

from . import synthetic
from .base import Dataset, DataError, DatasetInfo
from .csv_data import load_csv
from .digits import load_digits
from .folder import load_folder
from .torchvision_sets import load_torchvision
from .user_dataset import is_python_spec


def _torchvision(name: str, description: str, input_shape: tuple[int, ...]) -> DatasetInfo:
    loader = functools.partial(load_torchvision, name)
    return DatasetInfo(name, description, "classification", input_shape, loader, embedded=False)


_LONGRANGE_SHAPE = (synthetic.LONGRANGE_DEFAULT_LEN, synthetic.LONGRANGE_SYMBOLS)

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            "line",
            "y = 2x on three points (linear regression)",
            "regression",
            (1,),
            synthetic.load_line,
        ),
        DatasetInfo(
            "hours",
            "hours studied -> pass/fail, three points (logistic regression)",
            "binary",
            (1,),
            synthetic.load_hours,
        ),
        DatasetInfo(
            "curve",
            "y = x² + noise on 100 points (a first hidden layer)",
            "regression",
            (1,),
            synthetic.load_curve,
        ),
        DatasetInfo(
            "diabetes",
            "diabetes-like table: 759 rows, 8 features, binary (the 8-6-4-1 MLP)",
            "binary",
            (8,),
            synthetic.load_diabetes,
        ),
        DatasetInfo("hello", 'char RNN toy: "hello" -> "ohlol"', "sequence", (5,),
                    synthetic.load_hello),
        DatasetInfo(
            "longrange",
            f"remember the first of {_LONGRANGE_SHAPE[0]} symbols (RNN vs LSTM/GRU); longrange:LEN for others",
            "classification",
            _LONGRANGE_SHAPE,
            synthetic.load_longrange,
        ),
        DatasetInfo(
            "digits",
            "MNIST-like digits generated on the spot: 60k/10k, 1×28×28, no download",
            "classification",
            (1, 28, 28),
            load_digits,
        ),
        _torchvision("mnist", "MNIST handwritten digits (torchvision, ~12 MB download)", (1, 28, 28)),
        _torchvision("fashion-mnist", "Fashion-MNIST clothing (torchvision, ~30 MB download)", (1, 28, 28)),
        _torchvision("cifar10", "CIFAR-10 colour photos, 10 classes (torchvision, ~170 MB)", (3, 32, 32)),
    )
}

# Spellings people type for the same sets.
ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
    "cifar": "cifar10",
}

PREFIXES = ("csv", "folder", "longrange")
_SPEC_HELP = "csv:PATH, folder:PATH, longrange:LEN or FILE.py:build"


def list_datasets() -> list[DatasetInfo]:
    """Registry entries in teaching order: toys first, then images."""
    return list(DATASETS.values())


def load_dataset(
    spec: str,
    data_dir: str | Path | None = None,
    seed: int = 0,
    download: bool = True,
    **options: object,
) -> Dataset:
    """Load a dataset by name or spec; ``options`` go to the loader (e.g. digits' n_train/n_val).

    Raises DataError, whose message is meant to be shown to the user as is.
    """
    common = {"data_dir": data_dir, "seed": seed, "download": download, **options}
    kind, arg = resolve_spec(spec)
    if kind == "name":
        return DATASETS[arg].loader(**common)
    if kind == "longrange":
        return synthetic.load_longrange(length=int(arg), **common)
    if kind == "python":
        raise DataError(f"{spec} is your own Dataset: it streams through a DataLoader while "
                        "training (tui-nn train), and is never loaded whole")
    return (load_csv if kind == "csv" else load_folder)(arg, **common)


def resolve_spec(spec: str) -> tuple[str, str]:
    """(kind, argument) for a dataset spec without loading it: ("name", registry key),
    ("csv", path), ("folder", path), ("longrange", length) or ("python", spec). The command
    line checks a spec with this before a run starts (what load_dataset loads, and your own
    Dataset, which only the trainer streams).

    Raises DataError for a spec that names nothing."""
    spec = (spec or "").strip()
    if not spec:
        raise DataError(f"no dataset given; use one of {', '.join(DATASETS)} or {_SPEC_HELP}")
    lowered = spec.lower()
    key = ALIASES.get(lowered, lowered.replace("_", "-"))
    if key in DATASETS:
        return "name", key
    if is_python_spec(spec):
        return "python", spec
    prefix, sep, rest = spec.partition(":")
    if sep and prefix.lower() in PREFIXES:
        return _prefixed(prefix.lower(), rest.strip())
    # A bare path is unambiguous enough to accept without its prefix: a .csv file name, or a
    # folder that exists (`imgs`, `./imgs`, `imgs/`, an absolute path).
    if lowered.endswith((".csv", ".csv.gz")):
        return "csv", spec
    if Path(spec).expanduser().is_dir():
        return "folder", spec
    raise DataError(_unknown_message(spec, prefix if sep else None))


def _prefixed(prefix: str, rest: str) -> tuple[str, str]:
    if prefix == "longrange":
        try:
            int(rest)
        except ValueError:
            raise DataError(
                f"longrange:LEN needs a whole number of time steps, e.g. longrange:100 (got {rest!r})"
            ) from None
        return "longrange", rest
    if not rest:
        example = "csv:data/diabetes.csv.gz" if prefix == "csv" else "folder:data/my_images"
        raise DataError(f"{prefix}: needs a path, e.g. {example}")
    return prefix, rest


def _unknown_message(spec: str, prefix: str | None) -> str:
    names = ", ".join(DATASETS)
    if prefix is not None:
        close = difflib.get_close_matches(prefix.lower(), PREFIXES, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]}:?" if close else ""
        return f"unknown dataset prefix {prefix + ':'!r}.{hint} Valid: {names}, or {_SPEC_HELP}."
    candidates = list(DATASETS) + list(ALIASES)
    close = difflib.get_close_matches(spec.lower(), candidates, n=1, cutoff=0.5)
    hint = f" Did you mean {ALIASES.get(close[0], close[0])!r}?" if close else ""
    return f"unknown dataset {spec!r}.{hint} Valid: {names}, or {_SPEC_HELP}."
