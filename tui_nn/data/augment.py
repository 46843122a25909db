"""``--augment SPEC``: random transforms of training image batches, on the training device.

SPEC is a comma list, or a preset name (PRESETS):

    crop=K      shift by up to K pixels each way, the border filled black (RandomCrop with
                padding K)
    flip        mirror left-right, half the samples (RandomHorizontalFlip)
    rotate=D    rotate by up to ±D degrees (RandomRotation)
    scale=S     zoom by a factor in [1 - S, 1 + S] (RandomAffine's scale)
    jitter=J    brightness and contrast factors in [1 - J, 1 + J] (ColorJitter)
    blur=S      Gaussian blur, sigma up to S pixels (GaussianBlur)
    noise=S     Gaussian noise of std S, in pixel units of [0, 1] images

Every sample gets its own random parameters (torchvision.transforms.v2 on a batched tensor
draws one set per batch), yet the work is batched: crop, flip, rotate and scale are one affine
matrix per sample and one ``grid_sample`` for the whole batch; blur is one grouped convolution.
Batches arrive normalised ((x - mean) / std); the photometric transforms undo that to work in
pixel units. Validation batches are never augmented.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tui_nn.data.augment_spec import AugmentError, AugmentSpec, parse_augment  # noqa: F401
from tui_nn.fmt import format_shape


class Augmenter:
    """Applies an AugmentSpec to (B, C, H, W) batches normalised with mean/std (per channel)."""

    def __init__(self, spec: AugmentSpec, mean: tuple[float, ...] | None,
                 std: tuple[float, ...] | None, device: torch.device) -> None:
        self.spec = spec
        channels = len(mean) if mean else 1
        self.mean = torch.tensor(mean or (0.0,), device=device).view(1, channels, 1, 1)
        self.std = torch.tensor(std or (1.0,), device=device).view(1, channels, 1, 1)
        self.black = -self.mean / self.std  # raw 0 after normalisation, (1, C, 1, 1)

    def __str__(self) -> str:
        return f"augment {self.spec} (training batches)"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> the same shape, each sample transformed with its own draw."""
        s = self.spec
        # A channels_last batch (CUDA CNNs) must stay channels_last: grid_sample and the
        # grouped blur return the default layout.
        keep = (x.shape[1] > 1 and not x.is_contiguous()
                and x.is_contiguous(memory_format=torch.channels_last))
        if s.geometric:
            x = self._affine(x)
        if s.jitter:
            x = self._jitter(x)
        if s.blur:
            x = self._blur(x)
        if s.noise:
            x = x + torch.randn_like(x) * (s.noise / self.std)
        return x.contiguous(memory_format=torch.channels_last) if keep else x

    def _uniform(self, b: int, half_width: float, device: torch.device) -> torch.Tensor:
        return (torch.rand(b, device=device) * 2 - 1) * half_width  # (B,) in [-w, w]

    def _affine(self, x: torch.Tensor) -> torch.Tensor:
        s, (b, _, h, w), dev = self.spec, x.shape, x.device
        angle = self._uniform(b, math.radians(s.rotate), dev)  # (B,)
        zoom = 1 + self._uniform(b, s.scale, dev)  # (B,)
        mirror = (torch.where(torch.rand(b, device=dev) < 0.5, -1.0, 1.0) if s.flip
                  else torch.ones(b, device=dev))
        cos, sin = angle.cos() / zoom, angle.sin() / zoom
        # Output pixel -> input pixel is R(angle) · diag(mirror, 1) / zoom; affine_grid works in
        # [-1, 1] coordinates, so the off-diagonal terms carry the aspect ratio h/w.
        theta = torch.zeros(b, 2, 3, device=dev)  # (B, 2, 3)
        theta[:, 0, 0] = cos * mirror
        theta[:, 0, 1] = -sin * (h / w)
        theta[:, 1, 0] = sin * mirror * (w / h)
        theta[:, 1, 1] = cos
        if s.crop:
            shift = torch.randint(-s.crop, s.crop + 1, (b, 2), device=dev).float()  # pixels
            theta[:, 0, 2] = shift[:, 0] * (2 / w)
            theta[:, 1, 2] = shift[:, 1] * (2 / h)
        # One (2B, 3) @ (3, H·W) product: a broadcast batched matmul measured 50× slower.
        grid = (theta.view(b * 2, 3) @ self._base_grid(h, w, dev))  # (2B, H·W)
        grid = grid.view(b, 2, h, w).permute(0, 2, 3, 1)  # (B, H, W, 2) as affine_grid's
        # grid_sample fills with 0; shift so the fill is black in pixel units, not the mean.
        black = self.black.to(x.dtype)
        out = F.grid_sample(x - black, grid.to(x.dtype), mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        return out + black  # (B, C, H, W)

    def _base_grid(self, h: int, w: int, device: torch.device) -> torch.Tensor:
        """(3, H·W): columns [x, y, 1] of the pixel centres in [-1, 1] (align_corners=False),
        kept between calls: F.affine_grid measured 4× slower than the grid_sample it feeds."""
        key = (h, w, device)
        if getattr(self, "_grid_key", None) != key:
            ys = (torch.arange(h, device=device) * 2 + 1) / h - 1  # (H,)
            xs = (torch.arange(w, device=device) * 2 + 1) / w - 1  # (W,)
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
            self._grid = torch.stack([gx, gy, torch.ones_like(gx)]).view(3, h * w)
            self._grid_key = key
        return self._grid

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        b, dev, j = x.shape[0], x.device, self.spec.jitter
        raw = x * self.std + self.mean  # (B, C, H, W) in [0, 1]
        bright = (1 + self._uniform(b, j, dev)).view(b, 1, 1, 1)
        contrast = (1 + self._uniform(b, j, dev)).view(b, 1, 1, 1)
        raw = raw * bright
        grey = raw.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
        raw = ((raw - grey) * contrast + grey).clamp_(0, 1)
        return (raw - self.mean) / self.std

    def _blur(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        radius = max(1, math.ceil(2 * self.spec.blur))
        sigma = 0.1 + torch.rand(b, device=x.device) * max(self.spec.blur - 0.1, 0.0)  # (B,)
        t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)  # (k,)
        kernel = torch.exp(-t.view(1, -1) ** 2 / (2 * sigma.view(-1, 1) ** 2))  # (B, k)
        kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)
        k = kernel.shape[1]
        flat = x.reshape(1, b * c, h, w)  # one group per (sample, channel)
        pad = min(radius, h - 1, w - 1)
        flat = F.pad(flat, (pad, pad, pad, pad), mode="reflect" if pad else "constant")
        if pad < radius:  # images smaller than the kernel: zero-pad the rest
            extra = radius - pad
            flat = F.pad(flat, (extra, extra, extra, extra))
        flat = F.conv2d(flat, kernel.view(b * c, 1, 1, k), groups=b * c)  # along W
        flat = F.conv2d(flat, kernel.view(b * c, 1, k, 1), groups=b * c)  # along H
        return flat.view(b, c, h, w)


def build_augmenter(text: str | None, dataset, device: torch.device) -> Augmenter | None:
    """The Augmenter for a run, or None; a dataset that is not images is an AugmentError."""
    spec = parse_augment(text)
    if spec is None:
        return None
    if dataset.train_x.dim() != 4:
        shape = format_shape(dataset.input_shape)
        raise AugmentError(f"--augment transforms images (C×H×W) but {dataset.name}'s samples "
                           f"have shape {shape}: drop --augment for this dataset")
    return Augmenter(spec, dataset.mean, dataset.std, device)
