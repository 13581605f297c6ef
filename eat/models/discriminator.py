"""Multi-scale patch discriminator of the latent model's GAN loss (first-order-model / OSFV, Pix2Pix-style).

Trained with the latent model only (OSFV's loss: LSGAN + feature matching); not part of the
official EAT checkpoint, so its parameter names are free.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from eat.config import LatentConfig
from eat.models.blocks import hourglass_width
from eat.models.pyramid import ImagePyramid


class PatchBlock(nn.Module):
    """Spectral-norm conv 4×4 (no padding) → InstanceNorm (optional) → leaky ReLU 0.2 → 2×2 average pool (optional)."""

    def __init__(self, in_features: int, out_features: int, norm: bool, pool: bool):
        super().__init__()
        self.conv = spectral_norm(nn.Conv2d(in_features, out_features, kernel_size=4))
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else nn.Identity()
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.norm(self.conv(x)), 0.2)
        return F.avg_pool2d(out, 2) if self.pool else out


class PatchDiscriminator(nn.Module):
    """Image (B, 3, H, W) → (feature maps of every block, prediction map (B, 1, h, w): a realness score per patch)."""

    def __init__(self, cfg: LatentConfig):
        super().__init__()
        n, expansion, top = cfg.disc_num_blocks, cfg.disc_block_expansion, cfg.disc_max_features
        width = [3] + [hourglass_width(i + 1, expansion, top) for i in range(n)]
        # no norm on the first block, no pool after the last (Pix2Pix)
        self.down_blocks = nn.ModuleList(PatchBlock(width[i], width[i + 1], norm=i != 0, pool=i != n - 1)
                                         for i in range(n))
        self.conv = spectral_norm(nn.Conv2d(width[n], 1, kernel_size=1))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        features = []
        for block in self.down_blocks:
            x = block(x)
            features.append(x)
        return features, self.conv(x)


def _scale_key(scale: float) -> str:
    return str(scale).replace(".", "-")      # module names cannot contain dots


class MultiScaleDiscriminator(nn.Module):
    """One :class:`PatchDiscriminator` per scale in ``disc_scales`` (official: [1]).

    forward(image (B, 3, H, W) or an image pyramid {scale: image}) → {scale: (feature maps, prediction map)}.
    """

    def __init__(self, cfg: LatentConfig):
        super().__init__()
        self.scales = list(cfg.disc_scales)
        self.discs = nn.ModuleDict({_scale_key(s): PatchDiscriminator(cfg) for s in self.scales})
        self.pyramid = ImagePyramid(self.scales)

    def forward(self, x: torch.Tensor | dict[float, torch.Tensor]
                ) -> dict[float, tuple[list[torch.Tensor], torch.Tensor]]:
        pyramid = x if isinstance(x, dict) else self.pyramid(x)
        return {s: self.discs[_scale_key(s)](pyramid[s]) for s in self.scales}
