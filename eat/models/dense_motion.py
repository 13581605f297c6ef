"""Dense motion network of RePos-Net (Sec. 3.1.1, after OSFV / face-vid2vid): keypoints → 3D flow and occlusion.

From the source and driving keypoints it builds k + 1 candidate motions (the identity for the
background, and for each keypoint the translation driving → source), warps the compressed
appearance volume with each, and lets a 3D hourglass pick a soft mask over the candidates per
voxel. The flow is the mask-weighted sum of the candidate motions; the occlusion map says where
the warped source features can be trusted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eat.config import LatentConfig
from eat.models.blocks import Hourglass3d
from eat.models.keypoints import keypoints_to_gaussian, make_coordinate_grid

# Heatmap width σ² of the keypoint Gaussians fed to the hourglass (OSFV)
KP_VARIANCE = 0.01


def warp(volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Backward warp: out[..., p] = volume at grid[p] (trilinear): (N, C, D, H, W), (N, D, H, W, 3) → (N, C, D, H, W).

    ``align_corners=False`` is what the official code ran with (PyTorch's default since 1.3), so
    the official weights see the features they were trained on.
    """
    return F.grid_sample(volume, grid, align_corners=False)


def sparse_motions(kp_source: torch.Tensor, kp_driving: torch.Tensor, spatial: tuple[int, int, int]) -> torch.Tensor:
    """Candidate backward flows (B, k + 1, D, H, W, 3): the identity, then z − K_d[j] + K_s[j] for each keypoint j.

    Each keypoint's candidate moves a driving-frame voxel z by the keypoint's own translation to
    the source frame (OSFV without Jacobians: rotation enters only through the keypoints).
    """
    b, k, _ = kp_driving.shape
    identity = make_coordinate_grid(spatial, kp_driving.device, kp_driving.dtype)          # (D, H, W, 3)
    shift = (kp_source - kp_driving).view(b, k, 1, 1, 1, 3)
    per_keypoint = identity + shift                                                        # (B, k, D, H, W, 3)
    return torch.cat([identity.expand(b, 1, *identity.shape), per_keypoint], dim=1)


class DenseMotionNetwork(nn.Module):
    """Appearance volume (B, C, D, H, W) + keypoints (B, k, 3) ×2 → {deformation, mask, occlusion_map}.

    deformation: (B, D, H, W, 3) backward flow in [-1, 1]³ (a ``grid_sample`` grid into the source
    volume); mask: (B, k + 1, D, H, W), softmax over candidates; occlusion_map: (B, 1, H, W) in (0, 1).
    """

    def __init__(self, cfg: LatentConfig):
        super().__init__()
        self.num_kp = cfg.num_kp
        # each candidate contributes its warped compressed features plus one heatmap channel
        in_features = (cfg.num_kp + 1) * (cfg.dense_compress + 1)
        self.hourglass = Hourglass3d(in_features, cfg.dense_block_expansion, cfg.dense_num_blocks,
                                     cfg.dense_max_features)
        # Official kernel 7 (EAT_code); its weight gradient dominates a CPU step, so small profiles may shrink it.
        k = cfg.dense_mask_kernel
        self.mask = nn.Conv3d(self.hourglass.out_filters, cfg.num_kp + 1, kernel_size=k, padding=k // 2)
        self.compress = nn.Conv3d(cfg.feature_channel, cfg.dense_compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(cfg.dense_compress)
        self.occlusion = nn.Conv2d(self.hourglass.out_filters * cfg.reshape_depth, 1, kernel_size=7, padding=3)

    def deformed_features(self, feature: torch.Tensor, motions: torch.Tensor) -> torch.Tensor:
        """The volume warped by each candidate: (B, C, D, H, W), (B, K, D, H, W, 3) → (B, K, C, D, H, W)."""
        b, c, d, h, w = feature.shape
        k = motions.shape[1]
        repeated = feature.unsqueeze(1).expand(b, k, c, d, h, w).reshape(b * k, c, d, h, w)
        return warp(repeated, motions.reshape(b * k, d, h, w, 3)).view(b, k, c, d, h, w)

    @staticmethod
    def heatmap_difference(kp_source: torch.Tensor, kp_driving: torch.Tensor,
                           spatial: tuple[int, int, int]) -> torch.Tensor:
        """Gaussian(driving) − Gaussian(source) per keypoint, zeros for the background: (B, k + 1, 1, D, H, W)."""
        heat = (keypoints_to_gaussian(kp_driving, spatial, KP_VARIANCE)
                - keypoints_to_gaussian(kp_source, spatial, KP_VARIANCE))
        background = torch.zeros_like(heat[:, :1])
        return torch.cat([background, heat], dim=1).unsqueeze(2)

    def forward(self, feature: torch.Tensor, kp_source: torch.Tensor,
                kp_driving: torch.Tensor) -> dict[str, torch.Tensor]:
        b, _, d, h, w = feature.shape
        feature = F.relu(self.norm(self.compress(feature)))
        motions = sparse_motions(kp_source, kp_driving, (d, h, w))
        deformed = self.deformed_features(feature, motions)
        heat = self.heatmap_difference(kp_source, kp_driving, (d, h, w))
        prediction = self.hourglass(torch.cat([heat, deformed], dim=2).view(b, -1, d, h, w))

        mask = F.softmax(self.mask(prediction), dim=1)                              # (B, k + 1, D, H, W)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)                     # (B, D, H, W, 3)
        occlusion = torch.sigmoid(self.occlusion(prediction.view(b, -1, h, w)))     # depth folded into channels
        return {"deformation": deformation, "mask": mask, "occlusion_map": occlusion}
