"""What the app can pick from: zoo models, datasets and model sources (plain Python, no textual).

Everything here imports torch, so the app calls it from a thread worker after the first frame
is on screen (importing torch takes seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tui_nn.fmt import format_shape
from tui_nn.textsafe import clean_line, first_line


@dataclass(frozen=True)
class ModelEntry:
    """A model the picker lists: a zoo name, or a source the user opened."""

    source: str  # zoo name, path/to/file.py:Class or package.module:factory
    description: str
    input_text: str  # default input shape as typed in the inspector, e.g. '1x28x28'
    default_dataset: str | None
    defaults: Any = None  # zoo.TrainDefaults or None
    lesson: str = ""
    in_zoo: bool = True
    own_step: bool = False  # trains with a step plugin of its own (the GAN): no gradient flow
    shown_source: str = field(init=False)  # source as the picker shows it

    def __post_init__(self) -> None:
        # A source the user opened names a path and the model's class: data, made inert here
        # (one line each) for the picker and the inspector. A zoo lesson is this package's text.
        object.__setattr__(self, "description", clean_line(self.description, 200))
        object.__setattr__(self, "shown_source", clean_line(self.source, 200))


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    description: str


def shape_text(shape: tuple[int, ...], dtype: Any = None) -> str:
    text = format_shape(shape, sep="x")
    if dtype is not None and str(dtype) in ("torch.int64", "torch.long"):
        text += ":int64"
    return text


def quick_zoo_entries() -> list[ModelEntry]:
    """The zoo's names and descriptions without torch: the list of the app's first frame (the
    rest of each entry comes with zoo_entries, once a worker has imported torch)."""
    from tui_nn.zoo.names import DESCRIPTIONS

    return [ModelEntry(name, description, "", None) for name, description in DESCRIPTIONS.items()]


def zoo_entries() -> list[ModelEntry]:
    from tui_nn.zoo import list_models

    return [ModelEntry(s.name, s.description, shape_text(s.input_shape, s.input_dtype),
                       s.default_dataset, s.defaults, s.lesson, own_step=s.step is not None)
            for s in list_models()]


def dataset_entries() -> list[DatasetEntry]:
    """The data registry's datasets."""
    from tui_nn.data import list_datasets

    return [DatasetEntry(d.name, d.description) for d in list_datasets()]


def device_line(requested: str) -> str:
    """The device the next run would train on, in words: the driver's name, or '? (why)' for
    one that cannot be used, its reason's first line inert (it quotes the --device typed)."""
    from tui_nn.engine.device import device_name, resolve_device

    try:
        return device_name(resolve_device(requested))
    except ValueError as exc:
        return f"? ({first_line(exc)})"
