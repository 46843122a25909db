"""Builders for the small on-disk datasets the data tests read (no network, tiny files)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_NAMES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file for a uint8 array: magic 0x0000_08_ndim, then big-endian int32 dims, then data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_mnist_raw(
    root: Path, n_train: int = 20, n_test: int = 10, folder: str = "MNIST", gz: bool = False, seed: int = 0
) -> dict[str, np.ndarray]:
    """Write the four MNIST IDX files into root/<folder>/raw; return the arrays written."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {
        ("train", "images"): rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        ("train", "labels"): (np.arange(n_train) % 10).astype(np.uint8),
        ("test", "images"): rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        ("test", "labels"): ((np.arange(n_test) + 3) % 10).astype(np.uint8),
    }
    for key, array in arrays.items():
        data = idx_bytes(array)
        name = IDX_NAMES[key]
        if gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (raw / name).write_bytes(data)
    return {f"{split}_{kind}": array for (split, kind), array in arrays.items()}


def write_csv(path: Path, rows: list[list[object]], header: list[str] | None = None) -> Path:
    lines = [",".join(header)] if header else []
    lines += [",".join(str(v) for v in row) for row in rows]
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_image(path: Path, mode: str, size: tuple[int, int], value: int) -> Path:
    """A flat image of one grey level (or an RGB colour whose red is `value`); size is (W, H)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, 255 - value, 7)
    Image.new(mode, size, colour).save(path)
    return path


def write_image_tree(
    root: Path, classes: dict[str, int], mode: str = "L", size: tuple[int, int] = (8, 6)
) -> Path:
    """root/<class>/<i>.png, `count` images per class, each class its own grey level."""
    for class_index, (name, count) in enumerate(classes.items()):
        for i in range(count):
            write_image(root / name / f"{i}.png", mode, size, 40 * class_index + i)
    return root
