"""Classifier views: the confusion matrix after an epoch and a grid of validation images with
predicted/true labels, misclassified first, drawn with half-block characters.

Pass x as the model sees it (the Trainer's val_x is already normalised and on the device).
One prediction pass serves both views: ``predict`` once, then hand the result to
``confusion_matrix`` and ``sample_grid`` (each also predicts by itself when not given one).
Like the fit view, call these from the training thread, between steps or after an epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tui_nn.modelmode import in_mode

GRAY_RAMP = " .:-=+*#%@"  # dark to bright, for terminals without colour
UPPER_HALF, LOWER_HALF, FULL_BLOCK = "▀", "▄", "█"


@dataclass(frozen=True)
class Predictions:
    """Predicted class and its probability per sample (sequences flattened to one per step)."""

    pred: torch.Tensor  # (N,) int64, on the model's device
    confidence: torch.Tensor  # (N,) float in [0, 1]
    target: torch.Tensor  # (N,) int64, the true classes, flattened like pred

    @staticmethod
    def cat(parts: Sequence["Predictions"]) -> "Predictions":
        if not parts:
            empty = torch.zeros(0, dtype=torch.long)
            return Predictions(empty, torch.zeros(0), empty)
        return Predictions(torch.cat([p.pred for p in parts]),
                           torch.cat([p.confidence for p in parts]),
                           torch.cat([p.target for p in parts]))


def predictions_from_output(out: torch.Tensor, y: torch.Tensor, *,
                            threshold: float = 0.5) -> Predictions:
    """One batch's model output as Predictions, for a loop that already has the outputs (the
    engine's evaluate) and should not run the model a second time; join batches with
    ``Predictions.cat``.

    Outputs (B, C) are logits (argmax); (B, 1) or (B,) are the zoo's binary probabilities
    (thresholded at ``threshold``); (B, T, V) are per-step logits of a sequence model.
    """
    out = out.detach().float()
    if out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1):
        p1 = out.reshape(-1)  # (b,) P(class 1)
        pred = (p1 > threshold).long()
        conf = torch.where(pred == 1, p1, 1 - p1)
    else:
        probs = F.softmax(out.reshape(-1, out.shape[-1]), dim=-1)  # (b·T, C)
        conf, pred = probs.max(dim=-1)
    return Predictions(pred, conf, y.reshape(-1).long().to(pred.device))


def predict(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch: int = 1024,
            threshold: float = 0.5) -> Predictions:
    """Run the model in eval mode over x in batches, without autograd (see
    predictions_from_output for how outputs become classes)."""
    parts = []
    with in_mode(model, training=False), torch.inference_mode():
        for s in range(0, x.shape[0], batch):
            parts.append(predictions_from_output(model(x[s:s + batch]), y[s:s + batch],
                                                 threshold=threshold))
    return Predictions.cat(parts)


@dataclass(frozen=True)
class ConfusionMatrix:
    """counts[t][p]: samples of true class t predicted as p (rows true, columns predicted)."""

    counts: list[list[int]]
    labels: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(map(sum, self.counts))

    @property
    def correct(self) -> int:
        return sum(self.counts[i][i] for i in range(len(self.counts)))

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def most_confused(self, k: int = 5) -> list[tuple[str, str, int]]:
        """The k largest off-diagonal cells as (true label, predicted label, count)."""
        cells = [(self.labels[t], self.labels[p], c) for t, row in enumerate(self.counts)
                 for p, c in enumerate(row) if t != p and c > 0]
        return sorted(cells, key=lambda cell: -cell[2])[:k]


def _labels(num_classes: int, labels: Sequence[str] | None) -> tuple[str, ...]:
    if labels is not None and len(labels) == num_classes:
        return tuple(str(label) for label in labels)
    return tuple(str(i) for i in range(num_classes))


def confusion_matrix(model: nn.Module | None, x: torch.Tensor | None, y: torch.Tensor,
                     num_classes: int, *, batch: int = 1024, labels: Sequence[str] | None = None,
                     predictions: Predictions | None = None) -> ConfusionMatrix:
    """Count (true, predicted) pairs over all of x; it sums to the number of validation
    samples (per time step for sequences). One bincount on the device, one host read."""
    p = predictions or predict(model, x, y, batch=batch)
    target = p.target.to(p.pred.device)
    flat = target * num_classes + p.pred.clamp(0, num_classes - 1)  # (N,) cell index
    counts = torch.bincount(flat, minlength=num_classes * num_classes)  # (C·C,)
    return ConfusionMatrix(counts.view(num_classes, num_classes).tolist(),
                           _labels(num_classes, labels))


# ---- the image grid --------------------------------------------------------------------------

@dataclass(frozen=True)
class GridSample:
    index: int  # position in x
    true: int
    pred: int
    true_label: str
    pred_label: str
    confidence: float  # the model's probability for its prediction
    image: list[list[float]]  # (H, W) gray levels in [0, 1], ready for half_block_cells

    @property
    def correct(self) -> bool:
        return self.true == self.pred


def to_gray_image(sample: torch.Tensor) -> torch.Tensor:
    """One sample as a (H, W) float image in [0, 1]: channels averaged, stretched to the
    sample's own min..max (the inputs may be normalised to any range)."""
    img = sample.detach().float().cpu()
    if img.dim() == 3:
        img = img.mean(dim=0)  # (C, H, W) -> (H, W)
    elif img.dim() == 1:
        img = img.unsqueeze(0)  # (N,) -> (1, N)
    elif img.dim() != 2:
        img = img.reshape(img.shape[0], -1)
    lo, hi = img.min(), img.max()
    return (img - lo) / (hi - lo) if hi > lo else torch.zeros_like(img)


def sample_grid(model: nn.Module | None, x: torch.Tensor, y: torch.Tensor, k: int = 16,
                labels: Sequence[str] | None = None, *, batch: int = 1024,
                predictions: Predictions | None = None, image_size: int | None = None,
                digits: int = 3) -> list[GridSample]:
    """k validation samples, misclassified ones first (in index order), then correct ones.

    image_size, when given, shrinks each image to that width (area averaging) so a message
    carrying 16 images stays small; gray levels are rounded to ``digits`` decimals.
    """
    p = predictions or predict(model, x, y, batch=batch)
    if p.pred.numel() != x.shape[0]:
        raise ValueError("sample_grid needs one prediction per sample (not a sequence model)")
    wrong = (p.pred != p.target).nonzero().reshape(-1)  # (W,)
    right = (p.pred == p.target).nonzero().reshape(-1)  # (R,)
    chosen = torch.cat([wrong, right])[:k]
    # One host read for the metadata of the chosen samples.
    idx, true, pred = (t.tolist() for t in (chosen, p.target[chosen], p.pred[chosen]))
    conf = p.confidence[chosen].tolist()
    num = max([*true, *pred, len(labels or ()) - 1, 0]) + 1
    names = _labels(num, labels if labels is not None and len(labels) >= num else None)
    images = x[chosen.to(x.device)].detach().cpu()
    scale = 10.0 ** digits
    out = []
    for j, i in enumerate(idx):
        img = to_gray_image(images[j])
        if image_size is not None and img.shape[1] > image_size:
            h = max(1, round(img.shape[0] * image_size / img.shape[1]))
            img = F.interpolate(img[None, None], size=(h, image_size), mode="area")[0, 0]
        img = (img * scale).round() / scale  # short floats: a message with 16 images stays small
        out.append(GridSample(i, true[j], pred[j], names[true[j]], names[pred[j]], conf[j],
                              img.tolist()))
    return out


# ---- half blocks -----------------------------------------------------------------------------

def _as_image(image: Sequence[Sequence[float]] | torch.Tensor, width: int | None) -> torch.Tensor:
    img = image.detach().float().cpu() if isinstance(image, torch.Tensor) else torch.tensor(
        image, dtype=torch.float32)
    if img.dim() != 2:
        img = to_gray_image(img)
    if width is not None and width > 0 and width != img.shape[1]:
        h = max(1, round(img.shape[0] * width / img.shape[1]))
        img = F.interpolate(img[None, None], size=(h, width), mode="area")[0, 0]  # (h, width)
    if img.shape[0] % 2:
        img = torch.cat([img, torch.zeros(1, img.shape[1])])  # pad to an even number of rows
    return img.clamp(0, 1)


def half_block_cells(image: Sequence[Sequence[float]] | torch.Tensor, width: int | None = None
                     ) -> list[list[tuple[str, float, float]]]:
    """The image as terminal cells: each cell is '▀' covering two pixel rows, given as
    (char, top gray, bottom gray) — colour the foreground with the top and the background
    with the bottom. An (H, W) image becomes ceil(H/2) lines of W cells (28×28 -> 14 × 28);
    ``width`` rescales first, keeping the aspect ratio."""
    if isinstance(image, torch.Tensor) or (width and image and width != len(image[0])):
        img = _as_image(image, width)
        rows = img.tolist()
    else:
        # A GridSample image at its own size: plain Python is 10× faster than a tensor trip.
        rows = [list(row) for row in image]
        if min(map(min, rows)) < 0 or max(map(max, rows)) > 1:
            rows = [[min(1.0, max(0.0, v)) for v in row] for row in rows]
        if len(rows) % 2:
            rows.append([0.0] * len(rows[0]))
    top, bottom = rows[0::2], rows[1::2]
    return [[(UPPER_HALF, t, b) for t, b in zip(trow, brow)] for trow, brow in zip(top, bottom)]


def half_block_text(image: Sequence[Sequence[float]] | torch.Tensor, width: int | None = None,
                    *, mode: str = "blocks", threshold: float = 0.5,
                    ramp: str = GRAY_RAMP) -> list[str]:
    """A colourless rendering, one string per line.

    mode="blocks": each cell shows which of its two pixels are brighter than threshold
    (' ', '▀', '▄', '█'), still two pixel rows per line; mode="ramp": the mean of the two
    pixels picked from ``ramp`` (ASCII-safe)."""
    if mode not in ("blocks", "ramp"):
        raise ValueError(f"mode must be 'blocks' or 'ramp', got {mode!r}")
    lines = []
    for row in half_block_cells(image, width):
        if mode == "blocks":
            shapes = (" ", LOWER_HALF, UPPER_HALF, FULL_BLOCK)  # by (top lit, bottom lit)
            chars = [shapes[(t > threshold) * 2 + (b > threshold)] for _, t, b in row]
        else:
            top = len(ramp) - 1
            chars = [ramp[min(top, int((t + b) / 2 * top + 0.5))] for _, t, b in row]
        lines.append("".join(chars))
    return lines


def grid_text(samples: Sequence[GridSample], *, columns: int = 4, width: int | None = None,
              mode: str = "blocks", gap: int = 2) -> list[str]:
    """Several samples side by side with a caption line under each row of images."""
    out: list[str] = []
    for start in range(0, len(samples), columns):
        row = samples[start:start + columns]
        pictures = [half_block_text(s.image, width, mode=mode) for s in row]
        cell_w = max(max((len(line) for line in pic), default=0) for pic in pictures)
        captions = [(("✗ " if not s.correct else "  ") + f"{s.pred_label}/{s.true_label}")
                    for s in row]
        cell_w = max(cell_w, *(len(c) for c in captions))
        for i in range(max(len(p) for p in pictures)):
            out.append((" " * gap).join((p[i] if i < len(p) else "").ljust(cell_w)
                                        for p in pictures).rstrip())
        out.append((" " * gap).join(c.ljust(cell_w) for c in captions).rstrip())
    return out
