"""Building blocks shared by the latent model's networks (OSFV / face-vid2vid, as in the official EAT code).

Attribute names (``conv``, ``norm``, ``conv1``, ``norm_0``, ``mlp_shared`` …) are the official
ones, so that the official checkpoint loads by name (see ``eat/models/official_shapes.json``).
BatchNorm stands in for the official synchronised BatchNorm, which has the same parameters and buffers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

# ---------------------------------------------------------------------------------------------------------------
# 2D and 3D conv-norm-activation blocks


class DownBlock2d(nn.Module):
    """Conv 3×3 → BatchNorm → ReLU → 2×2 average pool: (B, C_in, H, W) → (B, C_out, H/2, W/2)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), 2)


class SameBlock2d(nn.Module):
    """Conv → BatchNorm → (leaky) ReLU at constant resolution: (B, C_in, H, W) → (B, C_out, H, W).

    ``leaky`` uses PyTorch's default slope 0.01, as the official generator's ``third`` block does.
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, leaky: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm2d(out_features)
        self.leaky = leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(x))
        return F.leaky_relu(out) if self.leaky else F.relu(out)


class DownBlock3d(nn.Module):
    """Conv3d 3×3×3 → BatchNorm3d → ReLU → pool (1, 2, 2): (B, C_in, D, H, W) → (B, C_out, D, H/2, W/2).

    Depth is never pooled: the volumes are shallow (D = 16 at 256²).
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), kernel_size=(1, 2, 2))


class UpBlock3d(nn.Module):
    """Nearest upsampling (1, 2, 2) → Conv3d → BatchNorm3d → ReLU: (B, C_in, D, H, W) → (B, C_out, D, 2H, 2W)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.conv = nn.Conv3d(in_features, out_features, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(F.interpolate(x, scale_factor=(1, 2, 2)))))


class ResBlock3d(nn.Module):
    """Pre-activation residual block, x + conv(relu(bn(conv(relu(bn(x)))))): (B, C, D, H, W) → same."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = nn.Conv3d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(features, features, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(features)
        self.norm2 = nn.BatchNorm3d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))


class ResBottleneck(nn.Module):
    """ResNet bottleneck C → C/4 → C/4 → C: (B, C, H, W) → (B, C, H/s, W/s); a strided 1×1 skip when s > 1."""

    def __init__(self, features: int, stride: int = 1):
        super().__init__()
        hidden = features // 4
        self.conv1 = nn.Conv2d(features, hidden, kernel_size=1)
        self.conv2 = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, stride=stride)
        self.conv3 = nn.Conv2d(hidden, features, kernel_size=1)
        self.norm1 = nn.BatchNorm2d(hidden)
        self.norm2 = nn.BatchNorm2d(hidden)
        self.norm3 = nn.BatchNorm2d(features)
        if stride != 1:
            self.skip = nn.Conv2d(features, features, kernel_size=1, stride=stride)
            self.norm4 = nn.BatchNorm2d(features)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.norm1(self.conv1(x)))
        out = F.relu(self.norm2(self.conv2(out)))
        out = self.norm3(self.conv3(out))
        skip = self.norm4(self.skip(x)) if self.stride != 1 else x
        return F.relu(out + skip)


# ---------------------------------------------------------------------------------------------------------------
# 3D hourglass of the dense motion network


def hourglass_width(level: int, block_expansion: int, max_features: int) -> int:
    """Channels at hourglass level ``level`` (level 0 = full resolution): min(max, expansion · 2^level)."""
    return min(max_features, block_expansion * 2**level)


class HourglassEncoder3d(nn.Module):
    """``num_blocks`` DownBlock3d; returns every level: [(B, C_in, D, H, W), …, (B, C_n, D, H/2ⁿ, W/2ⁿ)]."""

    def __init__(self, in_features: int, block_expansion: int, num_blocks: int, max_features: int):
        super().__init__()
        widths = [in_features] + [hourglass_width(i + 1, block_expansion, max_features) for i in range(num_blocks)]
        self.down_blocks = nn.ModuleList(DownBlock3d(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = [x]
        for block in self.down_blocks:
            levels.append(block(levels[-1]))
        return levels


class HourglassDecoder3d(nn.Module):
    """UpBlock3d from the coarsest level, concatenating each finer level (U-Net skips), then conv-BN-ReLU.

    Output: (B, block_expansion + C_in, D, H, W), the width the official ``out_filters`` has.
    """

    def __init__(self, in_features: int, block_expansion: int, num_blocks: int, max_features: int):
        super().__init__()
        blocks = []
        for level in reversed(range(num_blocks)):
            # every block but the first also sees the skip of the level below, hence twice the width
            width = hourglass_width(level + 1, block_expansion, max_features)
            in_width = width if level == num_blocks - 1 else 2 * width
            blocks.append(UpBlock3d(in_width, hourglass_width(level, block_expansion, max_features)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features
        self.conv = nn.Conv3d(self.out_filters, self.out_filters, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_filters)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        out = levels[-1]
        for block, skip in zip(self.up_blocks, reversed(levels[:-1]), strict=True):
            out = torch.cat([block(out), skip], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass3d(nn.Module):
    """3D U-Net pooling H and W only: (B, C_in, D, H, W) → (B, out_filters, D, H, W); H, W divisible by 2^num_blocks."""

    def __init__(self, in_features: int, block_expansion: int, num_blocks: int, max_features: int):
        super().__init__()
        self.encoder = HourglassEncoder3d(in_features, block_expansion, num_blocks, max_features)
        self.decoder = HourglassDecoder3d(in_features, block_expansion, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


# ---------------------------------------------------------------------------------------------------------------
# SPADE decoder blocks (Park et al., CVPR 2019), as in OSFV's SPADE generator


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: InstanceNorm(x) · (1 + γ(s)) + β(s), γ and β convs of the label map s.

    x: (B, C, H, W); s: (B, C_label, H', W'), resized (nearest) to H × W.
    """

    def __init__(self, features: int, label_features: int, hidden: int):
        super().__init__()
        self.param_free_norm = nn.InstanceNorm2d(features, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_features, hidden, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, features, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(hidden, features, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        actv = self.mlp_shared(F.interpolate(label, size=x.shape[2:], mode="nearest"))
        return self.param_free_norm(x) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)


class SPADEResnetBlock(nn.Module):
    """Two SPADE → leaky ReLU (0.2) → spectral-norm conv 3×3 units plus a shortcut: (B, C_in, H, W) → (B, C_out, H, W).

    A learned SPADE + 1×1 shortcut (no bias) when C_in ≠ C_out. Spectral norm is the old-style
    ``torch.nn.utils.spectral_norm`` (``weight_orig`` / ``weight_u`` / ``weight_v``), as in the checkpoint.
    """

    def __init__(self, in_features: int, out_features: int, label_features: int, hidden: int):
        super().__init__()
        middle = min(in_features, out_features)
        self.learned_shortcut = in_features != out_features
        self.conv_0 = spectral_norm(nn.Conv2d(in_features, middle, kernel_size=3, padding=1))
        self.conv_1 = spectral_norm(nn.Conv2d(middle, out_features, kernel_size=3, padding=1))
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(in_features, out_features, kernel_size=1, bias=False))
            self.norm_s = SPADE(in_features, label_features, hidden)
        self.norm_0 = SPADE(in_features, label_features, hidden)
        self.norm_1 = SPADE(middle, label_features, hidden)

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, label)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, label), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, label), 0.2))
        return shortcut + dx
