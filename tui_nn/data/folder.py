"""``folder:PATH``: an ImageFolder tree (one subfolder of images per class), decoded once.

    PATH/cat/001.png  PATH/dog/xyz.jpg ...              -> seeded, per-class 80/20 split
    PATH/train/cat/...  PATH/val/cat/... (or test/)     -> the tree's own split is kept

Channels come from the images: all grayscale -> 1 channel, anything else -> RGB (3 channels).
Size: when every image has the same size it is kept; when sizes differ, every image is resized
(aspect ratio not kept) to 28×28 for grayscale or 32×32 for RGB — the sizes the zoo's models
take — unless ``image_size=(H, W)`` is given. The whole set becomes one (N, C, H, W) tensor.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .base import Dataset, DataError, printable, unit_float
from .image_cache import channel_stats, decoding, default_budget, load_cached_folder
from .progress import SILENT, Progress
from .split import split_indices

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
_VAL_NAMES = ("val", "valid", "validation", "test")


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
        raise DataError(f"cannot read image {path}: {_reason(exc, path)}") from None


def _reason(exc: Exception, path: Path) -> str:
    """PIL's words without the path they often repeat ("cannot identify image file '...'"):
    the message names the image once."""
    text = str(exc)
    for form in (repr(str(path)), str(path)):
        text = text.replace(form, "")
    return text.strip().rstrip(":").strip() or type(exc).__name__


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
        raise DataError(f"cannot read image {path}: {_reason(exc, path)}") from None


def decode_or_reason(path: Path, mode: str, size: tuple[int, int],
                     strict: bool = False) -> np.ndarray | str:
    """_decode's pixels, or (unless strict: then it raises) why the image cannot be read: one
    bad file in a large tree is skipped, not the end of an hour's decode. Module-level, for
    the decode's worker processes."""
    try:
        return _decode(path, mode, size)
    except DataError as e:
        if strict:
            raise DataError(f"{e}{_STRICT}") from None
        return str(e).removeprefix(f"cannot read image {path}: ")


_STRICT = " (--strict stops at an unreadable image; without it, the image is skipped and listed)"


class Skipped:
    """The images of a tree that could not be read, by sample index, with why."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.reasons: dict[int, str] = {}

    def add(self, i: int, path: Path, reason: str) -> None:
        if self.strict:
            raise DataError(f"cannot read image {path}: {reason}{_STRICT}")
        self.reasons[i] = reason

    def lines(self, samples: list[tuple[Path, int]]) -> tuple[str, ...]:
        """"path: why" for each skipped image, in sample order (names made printable)."""
        return tuple(printable(f"{samples[i][0]}: {why}")
                     for i, why in sorted(self.reasons.items()))


SKIPPED_LISTED = 20  # names in the run's notice; the rest are counted


def skipped_notice(lines: tuple[str, ...]) -> str:
    """The run's notice of the images a folder's decode left out: how many, and which."""
    listed = "; ".join(lines[:SKIPPED_LISTED])
    more = f"; and {len(lines) - SKIPPED_LISTED:,} more" if len(lines) > SKIPPED_LISTED else ""
    return (f"skipped {len(lines):,} unreadable image{'s' if len(lines) != 1 else ''} "
            f"(--strict stops at the first instead): {listed}{more}")


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


def _to_tensor(samples: list[tuple[Path, int]], decode: Callable[[Path], np.ndarray | str],
               shape: tuple[int, int, int], skipped: Skipped, progress: Progress
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, C, H, W) uint8 and class ids (n,) int64 of the samples that decode (the
    others go to skipped)."""
    channels, height, width = shape
    # Decoded straight into NCHW: a permuted NHWC buffer keeps channels_last strides, and at
    # one channel .contiguous() cannot fix them (it counts a size-1 dim as contiguous), so a
    # conv then yields channels_last activations on which the seeds' x.view(B, -1) fails.
    pixels = np.empty((len(samples), channels, height, width), dtype=np.uint8)  # (N, C, H, W)
    labels, n = [], 0
    todo = [i for i in range(len(samples)) if i not in skipped.reasons]
    with decoding([samples[i][0] for i in todo], decode) as decoded:
        for i, hwc in progress.track(f"decoding {len(todo):,} images", zip(todo, decoded),
                                     len(todo)):
            if isinstance(hwc, str):
                skipped.add(i, samples[i][0], hwc)
                continue
            pixels[n] = hwc.reshape(height, width, channels).transpose(2, 0, 1)  # (C, H, W)
            labels.append(samples[i][1])
            n += 1
    x = torch.from_numpy(pixels[:n])  # (n, C, H, W) uint8, standard strides
    return x, torch.tensor(labels, dtype=torch.int64)  # (n,)


def _mode_and_size(samples: list[tuple[Path, int]], image_size: tuple[int, int] | None,
                   skipped: Skipped) -> tuple[str, tuple[int, int]]:
    """PIL mode ("L" when every image is grayscale, else "RGB") and (W, H) to decode to; an
    image whose header cannot be read goes to skipped."""
    probes = []
    for i, (path, _) in enumerate(samples):
        try:
            probes.append(_probe(path))
        except DataError as e:
            skipped.add(i, path, str(e).removeprefix(f"cannot read image {path}: "))
    if not probes:
        raise DataError(f"none of the {len(samples)} images can be read (the first: "
                        f"{skipped.lines(samples)[0]})")
    gray = all(mode in _GRAY_MODES for mode, _ in probes)
    sizes = Counter(size for _, size in probes)
    if image_size is not None:
        size = (int(image_size[1]), int(image_size[0]))  # PIL wants (W, H)
    elif len(sizes) == 1:
        size = next(iter(sizes))
    else:
        size = (28, 28) if gray else (32, 32)
    return ("L" if gray else "RGB"), size


def folder_input_shape(path: str | Path, image_size: tuple[int, int] | None = None
                       ) -> tuple[int, int, int]:
    """(C, H, W) that load_folder gives the tree's images, read from their headers alone."""
    skipped = Skipped(strict=False)
    mode, (width, height) = _mode_and_size(_tree(Path(path).expanduser())[2], image_size,
                                           skipped)
    return (1 if mode == "L" else 3, height, width)


def load_folder(
    path: str | Path, *, seed: int = 0, image_size: tuple[int, int] | None = None,
    as_uint8: bool = False, memory_budget: int | None = None, strict: bool = False,
    progress: Progress | None = None, **_: object
) -> Dataset:
    """Every image decoded into one (N, C, H, W) float tensor in [0, 1] (uint8 with as_uint8);
    see the module docstring. Over memory_budget bytes (default: half the free memory) the
    tree streams from its decode-once cache (data/image_cache.py). An unreadable image is
    skipped and listed in ``skipped`` (strict: a DataError instead)."""
    root = Path(path).expanduser()
    layout, classes, samples, train_samples = _tree(root)
    skipped = Skipped(strict)
    mode, size = _mode_and_size(samples, image_size, skipped)
    progress = progress or SILENT
    gray = mode == "L"
    decoded = len(samples) * (1 if gray else 3) * size[0] * size[1]  # uint8 bytes
    held = decoded if as_uint8 else decoded * 5  # a float copy beside the uint8 pixels
    budget = default_budget() if memory_budget is None else memory_budget
    decode = functools.partial(decode_or_reason, mode=mode, size=size, strict=strict)
    if held > budget:
        return load_cached_folder(root, classes, samples,
                                  len(train_samples) if layout is not None else None, mode,
                                  size, seed, budget, skipped, progress, decode)
    x, y = _to_tensor(samples, decode, (1 if gray else 3, size[1], size[0]), skipped,
                      progress)
    if layout is not None:
        n_train = len(train_samples) - sum(i < len(train_samples) for i in skipped.reasons)
        train_idx = torch.arange(n_train)
        train_x, train_y, val_x, val_y = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
        split = f"{layout[0].name}/{layout[1].name} folders"
    else:
        train_idx, val_idx = split_indices(len(y), seed, strata=y)
        train_x, train_y, val_x, val_y = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
        split = "80/20 split"
    # Per-channel statistics of the training images, for on-device normalisation, summed in
    # chunks: a float copy of the whole set would be 4× the pixels.
    mean, std = channel_stats(x.numpy(), train_idx.numpy())
    del x
    if not as_uint8:
        train_x, val_x = unit_float(train_x), unit_float(val_x)
    width, height = size
    return Dataset(
        name=f"folder:{root.name}",
        task="classification",
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        input_shape=(1 if gray else 3, height, width),
        num_classes=len(classes),
        mean=mean,
        std=std,
        labels=tuple(printable(c) for c in classes),  # names shown, never terminal codes
        description=(
            f"{root}: {len(y)} images, {len(classes)} classes, "
            f"{'grayscale' if gray else 'RGB'} {height}×{width}, {split}"
            + (f", {len(skipped.reasons)} unreadable skipped" if skipped.reasons else "")
        ),
        skipped=skipped.lines(samples),
    )
