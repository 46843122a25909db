"""``digits``: an MNIST-shaped digit set generated on the spot, so a first run needs no download.

Glyphs come from Pillow's bundled font, rendered once per (digit, variant) at high resolution
and shrunk MNIST-style (fit a 20×20 box, centre of mass at the centre of a 28×28 canvas). Each
sample is one of those glyphs pushed through a random affine map plus a smooth elastic warp,
a random stroke-thickness change and pixel noise — all in torch, batched over thousands of
samples at a time (one matmul builds the sampling grids, one ``grid_sample`` applies them),
because a per-sample PIL loop would take minutes for 70k.

The difficulty is tuned so the seed's basic CNN reaches about 98-99 % validation accuracy in
two epochs: hard enough that the curves mean something, easy enough for a first lesson.
The result is cached under ``~/.cache/tui-nn`` (or ``$TUI_NN_CACHE``), keyed by generator
version, sizes, seed and Pillow version (glyph rasterisation may change between releases).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tui_nn.fsio import atomic_write, cache_dir
from .base import Dataset, DataError, unit_float

# Bump whenever the generated pixels change, so stale caches are never reused.
GENERATOR_VERSION = 1

DEFAULT_N_TRAIN = 60_000
DEFAULT_N_VAL = 10_000
SIDE = 28
_BOX = 20  # MNIST fits each digit into a 20×20 box inside the 28×28 canvas
_RENDER_SIZE = 96  # render large, then shrink: gives MNIST-like anti-aliased edges
# Stroke widths (in render pixels) of the base glyph variants: thin to bold pen strokes.
_STROKES = (0, 2, 4, 6)
# Horizontal squeeze/stretch of the base glyphs before fitting, for narrow and wide writers.
_ASPECTS = (0.75, 1.0, 1.3)
# Samples per grid_sample call: bounds peak memory (~50 MB of grid per chunk).
_CHUNK = 8192


def _load_font(size: int):
    """(font, scalable). Pillow >= 10.1 bundles a scalable font; older or FreeType-less
    builds only have a tiny bitmap font, which still works after upscaling."""
    from PIL import ImageFont

    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError, AttributeError):
        font = ImageFont.load_default()
    return font, isinstance(font, ImageFont.FreeTypeFont)


def _fit_to_canvas(glyph: np.ndarray) -> np.ndarray:
    """Crop a rendered glyph, fit it into 20×20 and centre its mass on a 28×28 canvas."""
    from PIL import Image

    ys, xs = np.nonzero(glyph > 0)
    if ys.size == 0:
        raise DataError("the digits generator could not render glyphs with this Pillow build")
    crop = glyph[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = crop.shape
    scale = _BOX / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = np.asarray(
        Image.fromarray(crop).resize((new_w, new_h), Image.Resampling.LANCZOS), dtype=np.float32
    )
    small = np.clip(small, 0, 255)
    canvas = np.zeros((SIDE, SIDE), dtype=np.float32)
    # Centre of mass, not of the bounding box, as MNIST does: a "7" sits a little to the right.
    total = small.sum()
    cy = (small.sum(axis=1) * np.arange(new_h)).sum() / total
    cx = (small.sum(axis=0) * np.arange(new_w)).sum() / total
    top = min(max(int(round(SIDE / 2 - cy)), 0), SIDE - new_h)
    left = min(max(int(round(SIDE / 2 - cx)), 0), SIDE - new_w)
    canvas[top : top + new_h, left : left + new_w] = small
    return canvas


def render_glyphs() -> torch.Tensor:
    """Base glyph bank: (10, V, 28, 28) float in [0, 1], V variants per digit."""
    from PIL import Image, ImageDraw

    font, scalable = _load_font(_RENDER_SIZE)
    strokes = _STROKES if scalable else (0,)
    bank = []
    for digit in range(10):
        variants = []
        for stroke in strokes:
            pad = _RENDER_SIZE // 2 + stroke
            img = Image.new("L", (_RENDER_SIZE * 2, _RENDER_SIZE * 2), 0)
            draw = ImageDraw.Draw(img)
            draw.text((pad, pad), str(digit), fill=255, font=font, stroke_width=stroke, stroke_fill=255)
            if not scalable:
                # The bitmap fallback font is ~11 px high: upscale before fitting so it is not blocky.
                img = img.resize((img.width * 8, img.height * 8), Image.Resampling.BILINEAR)
            for aspect in _ASPECTS:  # a resize to the same size is a copy: aspect 1 is the glyph
                stretched = img.resize((max(1, round(img.width * aspect)), img.height),
                                       Image.Resampling.BILINEAR)
                variants.append(_fit_to_canvas(np.asarray(stretched)))
        bank.append(np.stack(variants))
    return torch.from_numpy(np.stack(bank) / 255.0).float()  # (10, V, 28, 28)


def _random_thetas(n: int, gen: torch.Generator) -> torch.Tensor:
    """Random affine maps (output -> input sampling coordinates): (n, 2, 3)."""

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    angle = uniform(-12.0, 12.0) * math.pi / 180.0
    scale = uniform(0.85, 1.15)
    aspect = uniform(0.9, 1.1)
    shear = uniform(-0.3, 0.3)
    # Translation in normalised units: 2 px ≈ 2 / 14 on a 28-px side spanning [-1, 1].
    tx = uniform(-2.0, 2.0) / (SIDE / 2)
    ty = uniform(-2.0, 2.0) / (SIDE / 2)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Forward map A = R · Shear · S (glyph -> image); grid_sample needs its inverse.
    sx, sy = scale * aspect, scale / aspect
    a = torch.stack(
        [
            torch.stack([cos * sx, cos * shear * sy - sin * sy], dim=-1),
            torch.stack([sin * sx, sin * shear * sy + cos * sy], dim=-1),
        ],
        dim=-2,
    )  # (n, 2, 2)
    a_inv = torch.linalg.inv(a)
    t = torch.stack([tx, ty], dim=-1).unsqueeze(-1)  # (n, 2, 1)
    return torch.cat([a_inv, -a_inv @ t], dim=-1)  # (n, 2, 3)


def _grid_basis() -> torch.Tensor:
    """Rows X, Y, 1 and 16 smooth bumps over the 28×28 output grid: (19, 784).

    A sample's sampling grid is a linear combination of these rows: the affine part uses
    X, Y, 1 (what ``affine_grid`` computes) and the elastic part uses bicubic bumps from a
    4×4 control lattice (what upsampling a random 4×4 field computes). One matmul for the
    whole chunk is several times faster than ``affine_grid`` plus ``interpolate``.
    """
    coords = (torch.arange(SIDE, dtype=torch.float32) * 2 + 1) / SIDE - 1  # align_corners=False centres
    y, x = torch.meshgrid(coords, coords, indexing="ij")  # (28, 28) each
    affine = torch.stack([x.flatten(), y.flatten(), torch.ones(SIDE * SIDE)])  # (3, 784)
    bumps = F.interpolate(
        torch.eye(16).view(16, 1, 4, 4), size=(SIDE, SIDE), mode="bicubic", align_corners=True
    ).view(16, SIDE * SIDE)  # (16, 784)
    return torch.cat([affine, bumps])  # (19, 784)


_ELASTIC_STRENGTH = 0.08  # control-point displacement, in grid units (1 = half the image)


def _synthesise(glyphs: torch.Tensor, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples: uint8 images (n, 1, 28, 28) and int64 labels (n,), classes balanced."""
    n_variants = glyphs.shape[1]
    basis = _grid_basis()  # (19, 784)
    # Balanced classes in random order: the split has the same share of every digit.
    labels = (torch.arange(n) % 10)[torch.randperm(n, generator=gen)]  # (n,)
    variant = torch.randint(0, n_variants, (n,), generator=gen)  # (n,)
    out = torch.empty(n, 1, SIDE, SIDE, dtype=torch.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        m = stop - start
        base = glyphs[labels[start:stop], variant[start:stop]].unsqueeze(1)  # (m, 1, 28, 28)
        # Smooth random displacement of a 4×4 lattice of control points, like a wobbly hand.
        elastic = (torch.rand(m, 2, 16, generator=gen) * 2 - 1) * _ELASTIC_STRENGTH  # (m, 2, 16)
        coeffs = torch.cat([_random_thetas(m, gen), elastic], dim=2)  # (m, 2, 19)
        grid = (coeffs.reshape(m * 2, -1) @ basis).view(m, 2, SIDE, SIDE)  # (m, 2, 28, 28)
        grid = grid.permute(0, 2, 3, 1)  # (m, 28, 28, 2): (x, y) per output pixel
        img = F.grid_sample(base, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        # Pen pressure: a fifth of the samples get a softly thickened stroke (half a 2×2 dilation).
        heavy = torch.nonzero(torch.rand(m, generator=gen) < 0.2).flatten()  # (k,)
        thick = F.max_pool2d(img[heavy], 2, stride=1, padding=1)[..., 1:, 1:]  # (k, 1, 28, 28)
        img[heavy] = 0.5 * (img[heavy] + thick)
        # Ink darkness varies per sample; faint non-negative noise, like a scan's grain.
        # Uniform noise, not Gaussian: torch.rand is several times cheaper than randn here.
        ink = 0.8 + 0.2 * torch.rand(m, 1, 1, 1, generator=gen)  # (m, 1, 1, 1)
        grain = torch.rand(img.shape, generator=gen).sub_(0.5).clamp_(min=0).mul_(0.12)  # (m, 1, 28, 28)
        img = torch.addcmul(grain, img, ink)
        out[start:stop] = img.clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return out, labels


def _build(n_train: int, n_val: int, seed: int) -> dict[str, torch.Tensor]:
    glyphs = render_glyphs()
    # Separate streams: the train split stays the same when only n_val changes.
    train_gen = torch.Generator().manual_seed(seed * 2 + 0)
    val_gen = torch.Generator().manual_seed(seed * 2 + 1)
    train_x, train_y = _synthesise(glyphs, n_train, train_gen)
    val_x, val_y = _synthesise(glyphs, n_val, val_gen)
    return {"train_x": train_x, "train_y": train_y, "val_x": val_x, "val_y": val_y}


def _cache_path(n_train: int, n_val: int, seed: int) -> Path:
    import PIL

    return cache_dir() / f"digits-v{GENERATOR_VERSION}-pil{PIL.__version__}-{n_train}-{n_val}-s{seed}.pt"


def _load_cached(path: Path) -> dict[str, torch.Tensor] | None:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001
        # Missing, truncated or foreign: not worth failing over; regenerate and overwrite it.
        return None
    if not isinstance(blob, dict) or set(blob) != {"train_x", "train_y", "val_x", "val_y"}:
        return None
    return blob


def _save_atomically(path: Path, blob: dict[str, torch.Tensor]) -> None:
    """Temp file, fsync, rename (tui_nn.fsio): readers never see half a file."""
    # A read-only home or full disk only costs a regeneration next time.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: torch.save(blob, f))


def load_digits(
    *,
    seed: int = 0,
    n_train: int = DEFAULT_N_TRAIN,
    n_val: int = DEFAULT_N_VAL,
    cache: bool = True,
    as_uint8: bool = False,
    **_: object,
) -> Dataset:
    """The embedded MNIST-like set: (N, 1, 28, 28) float in [0, 1] (uint8 with as_uint8), 10
    balanced classes."""
    if n_train < 1 or n_val < 1:
        raise DataError(f"digits needs n_train and n_val >= 1 (got {n_train} and {n_val})")
    path = _cache_path(n_train, n_val, seed)
    blob = _load_cached(path) if cache else None
    if blob is None:
        blob = _build(n_train, n_val, seed)
        if cache:
            _save_atomically(path, blob)
    train_f = unit_float(blob["train_x"])  # (N, 1, 28, 28)
    mean = float(train_f.mean())
    std = float(train_f.std())
    train_x = blob["train_x"] if as_uint8 else train_f
    val_x = blob["val_x"] if as_uint8 else unit_float(blob["val_x"])  # (M, 1, 28, 28)
    del train_f
    return Dataset(
        name="digits",
        task="classification",
        train_x=train_x,
        train_y=blob["train_y"].long(),
        val_x=val_x,
        val_y=blob["val_y"].long(),
        input_shape=(1, SIDE, SIDE),
        num_classes=10,
        mean=(mean,),
        std=(std,),
        labels=tuple(str(d) for d in range(10)),
        description=(
            f"embedded MNIST-like digits, {n_train} train / {n_val} val, 1×28×28, "
            f"generated from Pillow's font (seed {seed}), no download"
        ),
    )
