"""``folder:PATH``: an ImageFolder tree (one subfolder of images per class), decoded once.

    PATH/cat/001.png  PATH/dog/xyz.jpg ...              -> seeded, per-class 80/20 split
    PATH/train/cat/...  PATH/val/cat/... (or test/)     -> the tree's own split is kept

Channels come from the images: all grayscale -> 1 channel, anything else -> RGB (3 channels).
Size: when every image has the same size it is kept; when sizes differ, every image is resized
(aspect ratio not kept) to 28×28 for grayscale or 32×32 for RGB — the sizes the zoo's models
take — unless ``image_size=(H, W)`` is given. The whole set becomes one (N, C, H, W) tensor.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .base import Dataset, DataError, printable, unit_float
from .split import split_indices

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
_VAL_NAMES = ("val", "valid", "validation", "test")
# Decoded float pixels above this (4 GiB) will not fit comfortably in memory.
_MAX_ELEMENTS = 1 << 30


def _subdirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def _split_layout(root: Path) -> tuple[Path, Path] | None:
    """(train dir, val dir) when the tree is already split into train/ and val/ (or test/)."""
    names = {p.name.lower(): p for p in _subdirs(root)}
    val = next((names[n] for n in _VAL_NAMES if n in names), None)
    if "train" in names and val is not None and _subdirs(names["train"]):
        return names["train"], val
    return None


def _scan(root: Path, classes: list[str] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(image path, class id)]) for one class-per-subfolder tree."""
    class_dirs = _subdirs(root)
    if not class_dirs:
        loose = [p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        hint = f" (found {len(loose)} images directly in it)" if loose else ""
        raise DataError(
            f"folder {root} has no class subfolders{hint}; put each class's images in its own "
            f"subfolder, e.g. {root}/cat/1.png and {root}/dog/1.png"
        )
    names = classes if classes is not None else [d.name for d in class_dirs]
    by_name = {d.name: d for d in class_dirs}
    unknown = sorted(set(by_name) - set(names))
    if unknown:
        raise DataError(f"folder {root} has classes {unknown} that the training folder does not have")
    samples: list[tuple[Path, int]] = []
    empty = []
    for class_id, name in enumerate(names):
        if name not in by_name:
            continue  # a validation split may lack a class; training defines the class list
        images = _images_in(by_name[name])
        if not images and classes is None:
            empty.append(name)
        samples.extend((p, class_id) for p in images)
    if not samples:
        exts = ", ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(f"no images found under {root} (looked for {exts} in the class subfolders)")
    if empty:
        raise DataError(f"class folder(s) {', '.join(empty)} under {root} contain no images")
    return names, samples


def _probe(path: Path) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) from the file header, without decoding the pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.mode, im.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def _decode(path: Path, mode: str, size: tuple[int, int]) -> np.ndarray:
    """Pixels as uint8 (H, W) or (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if im.size != size:
                im = im.resize(size, Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None


def _tree(root: Path) -> tuple[tuple[Path, Path] | None, list[str], list[tuple[Path, int]],
                                list[tuple[Path, int]]]:
    """(split layout or None, class names, every sample, the train/ split's samples)."""
    if not root.exists():
        raise DataError(f"image folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; folder: expects a folder of class subfolders")
    layout = _split_layout(root)
    if layout is not None:
        classes, train_samples = _scan(layout[0])
        _, val_samples = _scan(layout[1], classes)
        samples = train_samples + val_samples
    else:
        classes, samples = _scan(root)
        train_samples = []
    if len(classes) < 2:
        raise DataError(
            f"folder {root} has only one class folder ({classes[0]!r}); classification needs at "
            "least 2 — point folder: at the folder that contains the class folders"
        )
    return layout, classes, samples, train_samples


def _to_tensor(
    samples: list[tuple[Path, int]], mode: str, size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, C, H, W) uint8 and class ids (N,) int64."""
    channels = 1 if mode == "L" else 3
    width, height = size
    if len(samples) * channels * width * height > _MAX_ELEMENTS:
        raise DataError(
            f"{len(samples)} images of {channels}×{height}×{width} are too large to hold in memory; "
            "use fewer or smaller images (image_size=(H, W) resizes them)"
        )
    # Decoded straight into NCHW: a permuted NHWC buffer keeps channels_last strides, and at
    # one channel .contiguous() cannot fix them (it counts a size-1 dim as contiguous), so a
    # conv then yields channels_last activations on which the seeds' x.view(B, -1) fails.
    pixels = np.empty((len(samples), channels, height, width), dtype=np.uint8)  # (N, C, H, W)
    for i, (path, _) in enumerate(samples):
        hwc = _decode(path, mode, size).reshape(height, width, channels)  # (H, W, C)
        pixels[i] = hwc.transpose(2, 0, 1)  # (C, H, W)
    x = torch.from_numpy(pixels)  # (N, C, H, W) uint8, standard strides
    y = torch.tensor([label for _, label in samples], dtype=torch.int64)  # (N,)
    return x, y


def _mode_and_size(samples: list[tuple[Path, int]], image_size: tuple[int, int] | None
                   ) -> tuple[str, tuple[int, int]]:
    """PIL mode ("L" when every image is grayscale, else "RGB") and (W, H) to decode to."""
    probes = [_probe(p) for p, _ in samples]
    gray = all(mode in _GRAY_MODES for mode, _ in probes)
    sizes = Counter(size for _, size in probes)
    if image_size is not None:
        size = (int(image_size[1]), int(image_size[0]))  # PIL wants (W, H)
    elif len(sizes) == 1:
        size = next(iter(sizes))
    else:
        size = (28, 28) if gray else (32, 32)
    return ("L" if gray else "RGB"), size


def load_folder(
    path: str | Path, *, seed: int = 0, image_size: tuple[int, int] | None = None,
    as_uint8: bool = False, memory_budget: int | None = None, **_: object
) -> Dataset:
    """Every image decoded into one (N, C, H, W) float tensor in [0, 1] (uint8 with as_uint8);
    see the module docstring. A tree whose uint8 pixels pass memory_budget bytes is streamed
    from its decode-once cache instead (data/image_cache.py)."""
    root = Path(path).expanduser()
    layout, classes, samples, train_samples = _tree(root)
    mode, size = _mode_and_size(samples, image_size)
    gray = mode == "L"
    # The engine keeps uint8 pixels: the float limit of the in-memory path bounds it too.
    if memory_budget is not None and len(samples) * (1 if gray else 3) * size[0] * size[1] > \
            min(memory_budget, _MAX_ELEMENTS):
        from .image_cache import load_cached_folder
        return load_cached_folder(root, classes, samples,
                                  len(train_samples) if layout is not None else None, mode,
                                  size, seed, memory_budget, _decode)
    x, y = _to_tensor(samples, mode, size)
    if layout is not None:
        n_train = len(train_samples)
        train_x, train_y, val_x, val_y = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
        split = f"{layout[0].name}/{layout[1].name} folders"
    else:
        train_idx, val_idx = split_indices(len(samples), seed, strata=y)
        train_x, train_y, val_x, val_y = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
        split = "80/20 split"

    channels = x.shape[1]
    # Per-channel statistics of the training images, for on-device normalisation.
    train_f = unit_float(train_x)  # (N, C, H, W) in [0, 1]
    mean = tuple(float(v) for v in train_f.mean(dim=(0, 2, 3)))
    std = tuple(max(float(v), 1e-6) for v in train_f.std(dim=(0, 2, 3)))
    train_x, val_x = (train_x, val_x) if as_uint8 else (train_f, unit_float(val_x))
    del train_f
    width, height = size
    return Dataset(
        name=f"folder:{root.name}",
        task="classification",
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        input_shape=(channels, height, width),
        num_classes=len(classes),
        mean=mean,
        std=std,
        labels=tuple(printable(c) for c in classes),  # names shown, never terminal codes
        description=(
            f"{root}: {len(samples)} images, {len(classes)} classes, "
            f"{'grayscale' if gray else 'RGB'} {height}×{width}, {split}"
        ),
    )
