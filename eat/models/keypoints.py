"""Implicit 3D keypoint geometry of the latent model (Sec. 3.1.1, after OSFV / face-vid2vid).

A frame is described by k 3D keypoints (Eq. 1 of the paper)::

    K = R · K_c + T + E

with K_c the canonical keypoints of the identity (keypoint detector), R a rotation from
yaw / pitch / roll, T a translation and E a per-keypoint expression deformation (head-pose
and expression estimator). Coordinates live in [-1, 1]³, ordered (x, y, z): x indexes the
width, y the height and z the depth of a (D, H, W) volume, as ``F.grid_sample`` expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# OSFV's pose bins (after Hopenet): 66 bins of 3° starting at −99°, bin i ↦ 3·i − 99 degrees.
POSE_RANGE_START = -99.0
POSE_RANGE_SPAN = 198.0


def make_coordinate_grid(shape: Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel-centre coordinates in [-1, 1] of a 2D (H, W) or 3D (D, H, W) grid.

    Returns (*shape, n) with the last axis ordered (x, y[, z]), i.e. reversed with respect to
    ``shape``, so that it can be used directly as a ``grid_sample`` grid.
    """
    axes = [torch.linspace(-1, 1, n, device=device, dtype=dtype) if n > 1
            else torch.zeros(1, device=device, dtype=dtype) for n in shape]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack(mesh[::-1], dim=-1)


def heatmap_to_keypoints(heatmap: torch.Tensor) -> torch.Tensor:
    """Expected coordinates of normalised heatmaps: (B, k, *S) → (B, k, len(S)).

    ``heatmap`` must already sum to one over its spatial axes (softmax applied); S is (H, W)
    or (D, H, W) and the result is (x, y) or (x, y, z) in [-1, 1].
    """
    spatial = heatmap.shape[2:]
    grid = make_coordinate_grid(spatial, heatmap.device, heatmap.dtype)
    weights = heatmap.flatten(2)                                  # (B, k, N)
    return weights @ grid.reshape(-1, len(spatial))               # (B, k, n)


def keypoints_to_gaussian(kp: torch.Tensor, spatial_size: Sequence[int], variance: float) -> torch.Tensor:
    """Unnormalised Gaussians exp(−‖p − kp‖² / 2σ²) around each keypoint: (B, k, n) → (B, k, *spatial_size)."""
    grid = make_coordinate_grid(spatial_size, kp.device, kp.dtype)              # (*S, n)
    centred = grid - kp.reshape(*kp.shape[:2], *([1] * len(spatial_size)), kp.shape[-1])
    return torch.exp(-0.5 * centred.pow(2).sum(-1) / variance)


def _bin_width(bins: int) -> float:
    return POSE_RANGE_SPAN / bins


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """Angle as the softmax expectation over pose bins: (B, bins) → (B,) degrees; bin i ↦ −99 + i·198/bins."""
    bins = logits.shape[-1]
    centres = POSE_RANGE_START + _bin_width(bins) * torch.arange(bins, device=logits.device, dtype=logits.dtype)
    return F.softmax(logits, dim=-1) @ centres


def degrees_to_bins(degrees: torch.Tensor, bins: int) -> torch.Tensor:
    """Index of the bin whose value (see :func:`bins_to_degrees`) is nearest: (B,) → (B,) long, clamped."""
    index = torch.round((degrees - POSE_RANGE_START) / _bin_width(bins))
    return index.clamp(0, bins - 1).long()


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Rotation from angles in degrees, OSFV's convention: R = R_x(pitch) · R_y(yaw) · R_z(roll). (B,) ×3 → (B, 3, 3).

    With this convention yaw = +90° takes the x axis to −z and the z axis to +x. (OSFV and the
    official EAT code convert degrees with π ≈ 3.14; we use the exact π — a 0.05 % angle difference.)
    """
    yaw, pitch, roll = (torch.deg2rad(a) for a in (yaw, pitch, roll))
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)

    def mat(*rows: torch.Tensor) -> torch.Tensor:
        return torch.stack(rows, dim=-1).reshape(*yaw.shape, 3, 3)

    r_pitch = mat(one, zero, zero, zero, pitch.cos(), -pitch.sin(), zero, pitch.sin(), pitch.cos())
    r_yaw = mat(yaw.cos(), zero, yaw.sin(), zero, one, zero, -yaw.sin(), zero, yaw.cos())
    r_roll = mat(roll.cos(), -roll.sin(), zero, roll.sin(), roll.cos(), zero, zero, zero, one)
    return r_pitch @ r_yaw @ r_roll


def compose_keypoints(canonical: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor,
                      expression: torch.Tensor) -> torch.Tensor:
    """Eq. 1 of the paper, K = R·K_c + T + E: (B, k, 3), (B, 3, 3), (B, 3), (B, k, 3) → (B, k, 3)."""
    return canonical @ rotation.transpose(-1, -2) + translation.unsqueeze(-2) + expression


@dataclass
class HeadPose:
    """Output of the head-pose / expression estimator for B frames.

    ``yaw``, ``pitch``, ``roll``: (B, bins) logits over pose bins; ``translation``: (B, 3);
    ``expression``: (B, k, 3), the deformation E of Eq. 1.
    """

    yaw: torch.Tensor
    pitch: torch.Tensor
    roll: torch.Tensor
    translation: torch.Tensor
    expression: torch.Tensor

    def split(self, sizes: list[int]) -> list[HeadPose]:
        """The poses of consecutive groups of ``sizes`` frames (one estimator call on a concatenated batch)."""
        parts = [torch.split(t, sizes) for t in (self.yaw, self.pitch, self.roll, self.translation, self.expression)]
        return [HeadPose(*fields) for fields in zip(*parts, strict=True)]

    def degrees(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(yaw, pitch, roll), each (B,) in degrees."""
        return bins_to_degrees(self.yaw), bins_to_degrees(self.pitch), bins_to_degrees(self.roll)

    def transform(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(R (B, 3, 3), T (B, 3), E (B, k, 3)) of Eq. 1."""
        return rotation_matrix(*self.degrees()), self.translation, self.expression

    def keypoints(self, canonical: torch.Tensor) -> torch.Tensor:
        """The frame's keypoints K = R·K_c + T + E (Eq. 1): canonical (B, k, 3) → (B, k, 3)."""
        return compose_keypoints(canonical, *self.transform())
