"""Head-pose and expression estimator (Sec. 3.1.1, after OSFV / face-vid2vid): image → R, T, E of Eq. 1.

A ResNet-50-shaped trunk (bottleneck stages of 3, 4, 6, 3 blocks, ``he_stage_blocks``) pooled to one vector, then
linear heads: yaw / pitch / roll as logits over ``pose_bins`` bins (official 66 bins of 3°),
translation T (3) and expression deformation E (3·k).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eat.config import LatentConfig
from eat.models.blocks import ResBottleneck
from eat.models.keypoints import HeadPose


def _bottlenecks(prefix: str, features: int, count: int) -> nn.Sequential:
    stage = nn.Sequential()
    for i in range(count):
        stage.add_module(f"{prefix}_{i}", ResBottleneck(features))
    return stage


class HeadPoseExpressionEstimator(nn.Module):
    """Image (B, 3, H, W) in [0, 1] → :class:`HeadPose` (pose logits (B, bins) ×3, T (B, 3), E (B, k, 3)).

    Stage widths are ``he_max_features`` / 8, / 4, / 2, / 1 (official 256, 512, 1024, 2048 with a
    ``he_block_expansion`` = 64 stem); the trunk downsamples 32× (stem 4×, then three strided stages). Stage i holds
    ``he_stage_blocks[i]`` bottlenecks (official 3, 4, 6, 3), the first of stages 2–4 strided.
    """

    def __init__(self, cfg: LatentConfig):
        super().__init__()
        w1, w2, w3, w4 = (cfg.he_max_features // d for d in (8, 4, 2, 1))
        n1, n2, n3, n4 = cfg.he_stage_blocks
        self.conv1 = nn.Conv2d(3, cfg.he_block_expansion, kernel_size=7, padding=3, stride=2)
        self.norm1 = nn.BatchNorm2d(cfg.he_block_expansion)
        self.conv2 = nn.Conv2d(cfg.he_block_expansion, w1, kernel_size=1)
        self.norm2 = nn.BatchNorm2d(w1)
        self.block1 = _bottlenecks("b1", w1, n1)
        self.conv3 = nn.Conv2d(w1, w2, kernel_size=1)
        self.norm3 = nn.BatchNorm2d(w2)
        self.block2 = ResBottleneck(w2, stride=2)
        self.block3 = _bottlenecks("b3", w2, n2 - 1)
        self.conv4 = nn.Conv2d(w2, w3, kernel_size=1)
        self.norm4 = nn.BatchNorm2d(w3)
        self.block4 = ResBottleneck(w3, stride=2)
        self.block5 = _bottlenecks("b5", w3, n3 - 1)
        self.conv5 = nn.Conv2d(w3, w4, kernel_size=1)
        self.norm5 = nn.BatchNorm2d(w4)
        self.block6 = ResBottleneck(w4, stride=2)
        self.block7 = _bottlenecks("b7", w4, n4 - 1)
        self.fc_roll = nn.Linear(w4, cfg.pose_bins)
        self.fc_pitch = nn.Linear(w4, cfg.pose_bins)
        self.fc_yaw = nn.Linear(w4, cfg.pose_bins)
        self.fc_t = nn.Linear(w4, 3)
        self.fc_exp = nn.Linear(w4, 3 * cfg.num_kp)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """The pooled trunk output (B, he_max_features)."""
        out = F.max_pool2d(F.relu(self.norm1(self.conv1(image))), kernel_size=3, stride=2, padding=1)
        out = self.block1(F.relu(self.norm2(self.conv2(out))))
        out = self.block3(self.block2(F.relu(self.norm3(self.conv3(out)))))
        out = self.block5(self.block4(F.relu(self.norm4(self.conv4(out)))))
        out = self.block7(self.block6(F.relu(self.norm5(self.conv5(out)))))
        return out.mean(dim=(2, 3))

    def forward(self, image: torch.Tensor) -> HeadPose:
        h = self.features(image)
        # OSFV (and so the official checkpoint) reads yaw from ``fc_roll`` and roll from ``fc_yaw``;
        # keep that wiring so its trained heads mean what they were trained to mean
        return HeadPose(yaw=self.fc_roll(h), pitch=self.fc_pitch(h), roll=self.fc_yaw(h),
                        translation=self.fc_t(h), expression=self.fc_exp(h).view(h.shape[0], -1, 3))
