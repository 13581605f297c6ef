"""Canonical keypoint detector D_k (Sec. 3.1.1, after OSFV / face-vid2vid): image → K_c, the identity's k 3D keypoints.

A 2D encoder lifts the (downscaled) image into a 3D feature volume, a 3D decoder refines it,
and one heatmap per keypoint over the volume is turned into an expected position in [-1, 1]³.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eat.config import LatentConfig
from eat.models.blocks import DownBlock2d, UpBlock3d, hourglass_width
from eat.models.keypoints import heatmap_to_keypoints
from eat.models.pyramid import AntiAliasInterpolation2d


class KeypointHourglass(nn.Module):
    """2D encoder → 1×1 conv → reshape to a volume → 3D decoder: (B, 3, h, w) → (B, C_out, D, h, w).

    With n = kp_num_blocks the encoder ends at h/2ⁿ with C_n channels; the 1×1 conv widens to
    C_n · D (official 1024 · 16 = 16384) so the map can be viewed as a depth-D volume of C_n channels.
    """

    def __init__(self, cfg: LatentConfig, in_features: int = 3):
        super().__init__()
        n, expansion, top = cfg.kp_num_blocks, cfg.kp_block_expansion, cfg.kp_max_features
        width = [hourglass_width(i, expansion, top) for i in range(n + 1)]
        self.down_blocks = nn.Sequential()
        for i in range(n):
            self.down_blocks.add_module(f"down{i}", DownBlock2d(in_features if i == 0 else width[i], width[i + 1]))
        self.conv = nn.Conv2d(width[n], width[n] * cfg.reshape_depth, kernel_size=1)
        self.up_blocks = nn.Sequential()
        for i in range(n):
            self.up_blocks.add_module(f"up{i}", UpBlock3d(width[n - i], width[n - i - 1]))
        self.depth = cfg.reshape_depth
        self.out_filters = width[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.down_blocks(x))
        b, c, h, w = out.shape
        return self.up_blocks(out.view(b, c // self.depth, self.depth, h, w))


class KeypointDetector(nn.Module):
    """D_k: image (B, 3, H, W) in [0, 1] → canonical keypoints K_c (B, k, 3) in [-1, 1]³, ordered (x, y, z)."""

    def __init__(self, cfg: LatentConfig):
        super().__init__()
        self.predictor = KeypointHourglass(cfg)
        self.kp = nn.Conv3d(self.predictor.out_filters, cfg.num_kp, kernel_size=3, padding=1)
        # the official detector works at ¼ resolution (64² for 256² frames); blur first so it does not alias
        self.down = AntiAliasInterpolation2d(3, cfg.kp_scale_factor) if cfg.kp_scale_factor != 1 else nn.Identity()
        self.temperature = cfg.kp_temperature

    def heatmaps(self, image: torch.Tensor) -> torch.Tensor:
        """Per-keypoint probability volumes (B, k, D, h, w), each summing to one (softmax at ``kp_temperature``)."""
        logits = self.kp(self.predictor(self.down(image)))
        probs = F.softmax(logits.flatten(2) / self.temperature, dim=2)
        return probs.view_as(logits)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return heatmap_to_keypoints(self.heatmaps(image))
