"""Audio encoder of A2ET (Sec. 3.1.2): the StarGANv2-VC generator's encoder-decoder over a mel window, with F0 features.

The official A2ET embeds it as ``audioencoder`` (``AudioEncoder(dim_in=64, style_dim=128, max_conv_dim=512,
w_hpf=0, F0_channel=256)``). The window's mel is treated as a one-channel image, frequency × time:

    mel (B, 1, n_mels, W) → stem → encode: down blocks (frequency / 2 each, widths × 2) + 2 bottleneck blocks
        → ⊕ F0 features (JDC, halved by ``F0_conv``) → decode: 2 bottleneck + 1 F0 block, then up blocks
        → (B, audio_channels, n_mels, W)

Every decoder block normalises with :class:`AdaIN`, an instance norm followed by the EAM of Sec. 3.2 driven by
the emotion token e0; with e0 = None it is a plain instance norm. These norm layers are adaptation parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from eat.config import A2ETConfig
from eat.models.eam import EAM

SLOPE = 0.2


class ResBlk(nn.Module):
    """Pre-activation residual block with GroupNorm(8): (B, C_in, H, W) → (B, C_out, H/2 or H, W), unit variance.

    ``downsample`` halves the height (frequency) only: time is preserved.
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, in_channels)
        self.norm2 = nn.GroupNorm(8, in_channels)
        if in_channels != out_channels:
            self.conv1x1 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.downsample = downsample

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, (2, 1)) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self._down(self.conv1x1(x) if hasattr(self, "conv1x1") else x)
        out = self.conv1(F.leaky_relu(self.norm1(x), SLOPE))
        out = self.conv2(F.leaky_relu(self.norm2(self._down(out)), SLOPE))
        return (shortcut + out) / math.sqrt(2)


class AdaIN(EAM):
    """Instance norm, then the EAM modulation by e0: IN(x) ⊙ (1 + γ) + β (the official AdaIN with tanh).

    x (B, C, H, W), e0 (B, emotion_dim) or None (then plain instance norm).
    """

    def forward(self, x: torch.Tensor, emotion: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(F.instance_norm(x), emotion)


class AdainResBlk(nn.Module):
    """Residual block normalised by :class:`AdaIN`; ``upsample`` doubles the height (frequency) first."""

    def __init__(self, in_channels: int, out_channels: int, emotion_dim: int, upsample: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.norm1 = AdaIN(in_channels, emotion_dim)
        self.norm2 = AdaIN(out_channels, emotion_dim)
        if in_channels != out_channels:
            self.conv1x1 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.upsample = upsample

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=(2, 1), mode="nearest") if self.upsample else x

    def forward(self, x: torch.Tensor, emotion: torch.Tensor | None = None) -> torch.Tensor:
        shortcut = self._up(x)
        if hasattr(self, "conv1x1"):
            shortcut = self.conv1x1(shortcut)
        out = self.conv1(self._up(F.leaky_relu(self.norm1(x, emotion), SLOPE)))
        out = self.conv2(F.leaky_relu(self.norm2(out, emotion), SLOPE))
        return (out + shortcut) / math.sqrt(2)


class AudioEncoder(nn.Module):
    """mel (B, 1, n_mels, W), F0 features (B, C_f0, *, W), e0 (B, emotion_dim) or None → (B, audio_channels, n_mels, W).

    n_mels must be divisible by 2^audio_down_blocks.
    """

    def __init__(self, cfg: A2ETConfig, f0_channels: int, emotion_dim: int):
        super().__init__()
        width = cfg.audio_channels
        self.stem = nn.Conv2d(1, width, 3, padding=1)
        self.encode = nn.ModuleList()
        ups = []
        for _ in range(cfg.audio_down_blocks):
            out = min(2 * width, cfg.audio_max_channels)
            self.encode.append(ResBlk(width, out, downsample=True))
            ups.insert(0, AdainResBlk(out, width, emotion_dim, upsample=True))   # mirrored: widest first
            width = out
        self.encode.extend(ResBlk(width, width) for _ in range(2))
        joined = width + f0_channels // 2
        self.decode = nn.ModuleList([AdainResBlk(joined, joined, emotion_dim), AdainResBlk(joined, joined, emotion_dim),
                                     AdainResBlk(joined, width, emotion_dim), *ups])
        self.F0_conv = nn.Sequential(ResBlk(f0_channels, f0_channels // 2))

    def forward(self, mel: torch.Tensor, f0: torch.Tensor, emotion: torch.Tensor | None = None) -> torch.Tensor:
        x = self.stem(mel)
        for block in self.encode:
            x = block(x)
        f0 = F.adaptive_avg_pool2d(self.F0_conv(f0), x.shape[-2:])
        x = torch.cat([x, f0], dim=1)
        for block in self.decode:
            x = block(x, emotion)
        return x
