"""A small DCGAN for 1×28×28 digits: a generator and a discriminator in one module.

The seed notes' last chapter: a generator G turns noise z into images, a discriminator D tells
real images from G's, and the two are trained against each other with two optimizers. The
Trainer trains one model with one loss, so the two-model step lives in a step plugin
(tui_nn/engine/gan_step.py); this module is only the networks.

``GAN.forward(x)`` is D's logit, so the shape inspector and the zoo's tools see one model that
takes a (B, 1, 28, 28) batch; the generator is reached through ``generate``.
"""

from __future__ import annotations

import torch
from torch import nn

NOISE_DIM = 64


class Generator(nn.Module):
    """z (B, 64) -> Linear -> (B, 64, 7, 7) -> two stride-2 transposed convs -> (B, 1, 28, 28),
    tanh: pixels in [-1, 1] (GAN.generate maps them to the data's range)."""

    def __init__(self, noise_dim: int = NOISE_DIM) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(noise_dim, 64 * 7 * 7, bias=False),
                                nn.BatchNorm1d(64 * 7 * 7), nn.ReLU())
        self.up = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1),  # 14 -> 28
            nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, 64, 7, 7)  # (B, 64, 7, 7)
        return self.up(x)  # (B, 1, 28, 28) in [-1, 1]


class Discriminator(nn.Module):
    """(B, 1, 28, 28) -> two stride-2 convs -> (B, 64, 7, 7) -> Linear(3136, 1): one logit,
    "real" when positive. No sigmoid: BCEWithLogits is the stable form of the seed's BCE."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, 32, 14, 14)
            nn.Conv2d(32, 64, 4, stride=2, padding=1, bias=False),  # (B, 64, 7, 7)
            nn.BatchNorm2d(64), nn.LeakyReLU(0.2))
        self.fc = nn.Linear(64 * 7 * 7, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x).flatten(1)  # (B, 3136)
        return self.fc(x)  # (B, 1)


class GAN(nn.Module):
    """Both networks, plus the data's pixel range (buffers, so checkpoints keep them): the
    training data may be normalised to any range, and G's tanh output is stretched onto it."""

    def __init__(self, noise_dim: int = NOISE_DIM) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.generator = Generator(noise_dim)
        self.discriminator = Discriminator()
        self.register_buffer("data_low", torch.tensor(-1.0))
        self.register_buffer("data_high", torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator(x)  # (B, 1) logits

    def noise(self, n: int, generator: torch.Generator | None = None,
              device: torch.device | str | None = None) -> torch.Tensor:
        return torch.randn(n, self.noise_dim, generator=generator,
                           device=device if device is not None else self.data_low.device)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in the data's range from noise z (B, noise_dim) -> (B, 1, 28, 28)."""
        unit = (self.generator(z) + 1) / 2  # (B, 1, 28, 28) in [0, 1]
        return self.data_low + unit * (self.data_high - self.data_low)

    def set_data_range(self, low: float, high: float) -> None:
        self.data_low.fill_(low)
        self.data_high.fill_(high)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Data-range images back to [0, 1] gray levels (for display)."""
        span = (self.data_high - self.data_low).clamp_min(1e-8)
        return ((x - self.data_low) / span).clamp(0, 1)
