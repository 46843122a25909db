"""Datasets as in-memory tensors: the seed course's toys, an embedded MNIST-like set,
torchvision sets, CSV tables and image folders.

Never imports textual, typer, rich or plotext: the engine and tests use it headless.
"""

from .adapt import adapt_to_input
from .base import Dataset, DataError, DatasetInfo
from .registry import DATASETS, list_datasets, load_dataset

__all__ = [
    "DATASETS",
    "DataError",
    "Dataset",
    "DatasetInfo",
    "adapt_to_input",
    "list_datasets",
    "load_dataset",
]
