"""RePos-Net (Sec. 3.1.1 and Fig. 2 of the paper; OSFV's occlusion-aware SPADE generator, as in the official EAT code).

    source image ──appearance──▶ f_s (B, C, D, h, w) ──3D EAM(e0)──▶ dense motion(K_s, K_d) ──warp──▶
        fold depth ──▶ third / fourth ──▶ × occlusion ──▶ SPADE decoder ──▶ frame (B, 3, H, W)

The 3D EAM (Sec. 3.2) modulates the appearance volume before the motion is estimated, as the
official ``OcclusionAwareSPADEGeneratorEam`` does; without an emotion token it is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eat.config import LatentConfig
from eat.models.blocks import DownBlock2d, ResBlock3d, SameBlock2d, SPADEResnetBlock, hourglass_width
from eat.models.dense_motion import DenseMotionNetwork, warp
from eat.models.eam import EAM


class SPADEDecoder(nn.Module):
    """2D features (B, C_f, h, w) → image (B, 3, h·2ⁿ, w·2ⁿ) in [0, 1], n = gen_down_blocks.

    fc conv to 2·C_f, ``gen_res_blocks`` SPADE residual blocks (G_middle_i), then n × (upsample 2×,
    SPADE block ``up_i`` halving the width; the last narrows to ``gen_block_expansion``), conv_img,
    sigmoid. Every SPADE block is conditioned on the decoder's input itself (the label map).
    Official sizes: C_f = 256, six G_middle blocks, up_0 512 → 256, up_1 256 → 64.
    """

    def __init__(self, cfg: LatentConfig):
        super().__init__()
        label = cfg.gen_block_expansion * 2**cfg.gen_down_blocks
        self.fc = nn.Conv2d(label, 2 * label, kernel_size=3, padding=1)
        for i in range(cfg.gen_res_blocks):
            self.add_module(f"G_middle_{i}", SPADEResnetBlock(2 * label, 2 * label, label, cfg.spade_hidden))
        widths = [2 * label // 2**i for i in range(cfg.gen_down_blocks)] + [cfg.gen_block_expansion]
        for i in range(cfg.gen_down_blocks):
            self.add_module(f"up_{i}", SPADEResnetBlock(widths[i], widths[i + 1], label, cfg.spade_hidden))
        self.conv_img = nn.Conv2d(cfg.gen_block_expansion, 3, kernel_size=3, padding=1)
        self.middle = [f"G_middle_{i}" for i in range(cfg.gen_res_blocks)]
        self.ups = [f"up_{i}" for i in range(cfg.gen_down_blocks)]

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = self.fc(feature)
        for name in self.middle:
            x = getattr(self, name)(x, feature)
        for name in self.ups:
            x = getattr(self, name)(F.interpolate(x, scale_factor=2), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))


class RePosNet(nn.Module):
    """Renders the source identity with the driving keypoints (Sec. 3.1.1); the official checkpoint's ``generator``.

    ``appearance`` extracts f_s once per source image; ``render`` reuses it for any number of driving frames.
    """

    def __init__(self, cfg: LatentConfig):
        super().__init__()
        expansion, top, n = cfg.gen_block_expansion, cfg.gen_max_features, cfg.gen_down_blocks
        width = [hourglass_width(i, expansion, top) for i in range(n + 1)]
        self.first = SameBlock2d(3, expansion)
        self.down_blocks = nn.ModuleList(DownBlock2d(width[i], width[i + 1]) for i in range(n))
        self.second = nn.Conv2d(width[n], top, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.gen_res_blocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(cfg.feature_channel))
        self.ea3d = EAM(cfg.feature_channel, cfg.emotion_dim)
        self.dense_motion_network = DenseMotionNetwork(cfg)
        decoder_width = expansion * 2**n
        self.third = SameBlock2d(top, decoder_width, leaky=True)
        self.fourth = nn.Conv2d(decoder_width, decoder_width, kernel_size=1)
        self.decoder = SPADEDecoder(cfg)
        self.channels, self.depth = cfg.feature_channel, cfg.reshape_depth

    def appearance(self, source: torch.Tensor) -> torch.Tensor:
        """Appearance feature volume f_s: source (B, 3, H, W) in [0, 1] → (B, C, D, H/2ⁿ, W/2ⁿ)."""
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        out = self.second(out)
        b, _, h, w = out.shape
        return self.resblocks_3d(out.view(b, self.channels, self.depth, h, w))

    def render(self, volume: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor,
               emotion: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """f_s (B, C, D, h, w), K_s and K_d (B, k, 3), e0 (B, emotion_dim) or None → outputs of :meth:`forward`."""
        volume = self.ea3d(volume, emotion)
        motion = self.dense_motion_network(volume, kp_source, kp_driving)
        warped = warp(volume, motion["deformation"])
        b, c, d, h, w = warped.shape
        out = self.fourth(self.third(warped.view(b, c * d, h, w)))
        prediction = self.decoder(out * motion["occlusion_map"])
        return {"prediction": prediction, **motion}

    def forward(self, source: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor,
                emotion: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Source (B, 3, H, W) → {prediction (B, 3, H, W) in [0, 1], occlusion_map (B, 1, h, w),
        mask (B, k + 1, D, h, w), deformation (B, D, h, w, 3)}."""
        return self.render(self.appearance(source), kp_source, kp_driving, emotion)
