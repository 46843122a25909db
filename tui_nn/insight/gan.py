"""What a GAN's generator draws: a fixed noise batch turned into gray images for the half-block
grid (tui_nn.insight.classify.half_block_cells draws each one)."""

from __future__ import annotations

import torch
from torch import nn

from tui_nn.modelmode import in_mode


def generated_images(gan: nn.Module, z: torch.Tensor, digits: int = 3) -> list[list[list[float]]]:
    """G's images of noise z (N, noise_dim), each an (H, W) list of gray levels in [0, 1],
    rounded to ``digits`` decimals (a message with 16 of them stays small). Eval mode (batch
    norm uses its running statistics), no autograd; the model's mode is restored."""
    with in_mode(gan, training=False), torch.inference_mode():
        images = gan.to_unit(gan.generate(z)).float().cpu()  # (N, 1, H, W) in [0, 1]
    scale = 10.0 ** digits
    images = (images.mean(dim=1) * scale).round() / scale  # (N, H, W): channels averaged
    return images.tolist()
