"""Shape strings: `1x28x28`, `64x1x28x28`, `1×28×28`, `50x4`, `1x5:int64`, several inputs.

Dimensions are separated by `x`, `X`, `×` or `*`; several inputs by `,` or `;` (or by
repeating `--input`). An input may end with `:dtype` to give that input its own dtype
(`1x5:int64` for token ids). Whether the batch dimension is included is decided later,
by `add_batch`, once the model is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A dtype name as the user types it -> the torch attribute name. Kept as strings so this
# module stays importable without torch (the CLI parses before importing torch).
DTYPE_ALIASES: dict[str, str] = {
    "float": "float32", "float32": "float32", "f32": "float32", "fp32": "float32",
    "double": "float64", "float64": "float64", "f64": "float64",
    "half": "float16", "float16": "float16", "f16": "float16", "fp16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "long": "int64", "int64": "int64", "i64": "int64",
    "int": "int32", "int32": "int32", "i32": "int32",
    "int16": "int16", "short": "int16", "int8": "int8", "uint8": "uint8",
    "bool": "bool",
}

_DIM_SEP = re.compile(r"\s*[xX×*]\s*")
_INPUT_SEP = re.compile(r"\s*[,;]\s*")


class ShapeParseError(ValueError):
    """A shape or dtype string the user typed is malformed; the message says how to write it."""


@dataclass(frozen=True)
class InputSpec:
    shape: tuple[int, ...]
    dtype: str | None = None  # canonical torch dtype name, None = model default


def normalize_dtype(name: str) -> str:
    key = name.strip().lower().removeprefix("torch.")
    try:
        return DTYPE_ALIASES[key]
    except KeyError:
        raise ShapeParseError(
            f"unknown dtype '{name}': use one of float32, float16, bfloat16, float64, "
            f"int64, int32, bool") from None


def parse_shape(text: str) -> tuple[int, ...]:
    """'1x28x28' -> (1, 28, 28). Every dimension must be a positive integer."""
    raw = text.strip().strip("()[]")
    if not raw:
        raise ShapeParseError("empty input shape: write it like 1x28x28")
    parts = _DIM_SEP.split(raw)
    dims: list[int] = []
    for part in parts:
        if not part.isdigit():  # also rejects '-1', '2.5', '' from '1xx2'
            raise ShapeParseError(
                f"bad input shape '{text.strip()}': dimensions must be positive integers "
                f"separated by x, e.g. 1x28x28")
        value = int(part)
        if value <= 0:
            raise ShapeParseError(
                f"bad input shape '{text.strip()}': dimension {value} must be ≥ 1")
        dims.append(value)
    return tuple(dims)


def parse_input(text: str) -> InputSpec:
    """'1x5:int64' -> InputSpec((1, 5), 'int64')."""
    shape_text, sep, dtype_text = text.partition(":")
    dtype = normalize_dtype(dtype_text) if sep else None
    return InputSpec(parse_shape(shape_text), dtype)


def parse_inputs(texts: str | list[str] | tuple[str, ...]) -> list[InputSpec]:
    """Several `--input` values, each possibly holding several inputs separated by ',' or ';'."""
    if isinstance(texts, str):
        texts = [texts]
    specs: list[InputSpec] = []
    for text in texts:
        pieces = _INPUT_SEP.split(text.strip())
        if any(not p for p in pieces):
            raise ShapeParseError(f"bad input list '{text}': separate inputs with ',' e.g. 1x5,1x5")
        specs.extend(parse_input(p) for p in pieces)
    return specs


def format_factors(dims: tuple[int, ...] | list[int]) -> str:
    """(20, 4, 4) -> '20 × 4 × 4': the spaced form used when explaining a product."""
    return " × ".join(str(d) for d in dims)


def add_batch(shape: tuple[int, ...], sample_rank: int | None) -> tuple[int, ...]:
    """Prepend a batch of 1 when `shape` is one sample.

    `sample_rank` is the rank of one sample when known (zoo models, or guessed from the
    first layer). Unknown rank: a single number is read as one feature vector, anything
    longer as already batched.
    """
    rank = 1 if sample_rank is None else sample_rank
    return (1, *shape) if len(shape) == rank else shape
