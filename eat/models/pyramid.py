"""Anti-aliased downsampling and image pyramids (first-order-model / OSFV).

The keypoint detector sees the image downscaled by ``kp_scale_factor`` (official 0.25 at
256²), and the multi-scale perceptual loss and discriminator compare images at several
scales (official 1, ½, ¼, ⅛). Both blur with a Gaussian of σ = (1/scale − 1)/2 before
subsampling, so the smaller images do not alias.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then nearest subsampling by ``scale``: (B, C, H, W) → (B, C, ⌊H·s⌋, ⌊W·s⌋).

    The kernel is a fixed buffer named ``weight`` of shape (C, 1, k, k), k = 2·round(4σ) + 1,
    so the official ``kp_detector.down.weight`` (3, 1, 13, 13) at scale 0.25 loads into it.
    """

    def __init__(self, channels: int, scale: float):
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.ka = size // 2
        self.kb = self.ka - 1 if size % 2 == 0 else self.ka
        grid = torch.arange(size, dtype=torch.float32)
        g = torch.exp(-((grid - (size - 1) / 2) ** 2) / (2 * sigma**2)) if sigma > 0 else (grid == size // 2).float()
        kernel = torch.outer(g, g)
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).contiguous())
        self.groups = channels
        self.scale = scale
        self.int_inv_scale = int(round(1 / scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        out = F.conv2d(F.pad(x, (self.ka, self.kb, self.ka, self.kb)), self.weight, groups=self.groups)
        if math.isclose(1 / self.scale, self.int_inv_scale):
            return out[:, :, :: self.int_inv_scale, :: self.int_inv_scale]
        return F.interpolate(out, scale_factor=self.scale, mode="nearest")


class ImagePyramid(nn.Module):
    """``{scale: image at that scale}`` for each scale in ``scales`` (1.0 = the input itself)."""

    def __init__(self, scales: list[float], channels: int = 3):
        super().__init__()
        self.scales = list(scales)
        self.downs = nn.ModuleList(AntiAliasInterpolation2d(channels, s) for s in self.scales)

    def forward(self, x: torch.Tensor) -> dict[float, torch.Tensor]:
        return {s: down(x) for s, down in zip(self.scales, self.downs, strict=True)}
