"""Losses of the 3D latent model (Sec. 3.1.1): OSFV's (face-vid2vid) terms plus the face-region L1.

Each function returns an unweighted scalar (except where OSFV weights inside a sum: the
perceptual layers and feature-matching layers); the trainer multiplies by the
:class:`eat.config.LatentTrainConfig` weights. The paper's "enhanced" latent drops the
deformation prior and adds L1 on the face region (:func:`face_mask`, :func:`masked_l1`).

Discriminator outputs are passed as ``{scale: (features, prediction)}``: per scale the list of
intermediate feature maps and the (B, 1, h, w) patch prediction map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from eat.latent.transforms import RandomWarp
from eat.latent.vgg import VGG19Features
from eat.models.keypoints import bins_to_degrees

DiscOutputs = Mapping[object, tuple[Sequence[torch.Tensor], torch.Tensor]]

def perceptual_loss(real_pyramid: Mapping[float, torch.Tensor], fake_pyramid: Mapping[float, torch.Tensor],
                    vgg: VGG19Features, weights: Sequence[float]) -> torch.Tensor:
    """Multi-scale VGG19 perceptual loss (OSFV/FOMM L_P; the paper's L_per).

    Σ_scales Σ_l weights[l] · mean |VGG_l(real) − VGG_l(fake)| over the pyramid levels
    ``{scale: (B, 3, h, w)}`` in [0, 1] (from :class:`eat.models.pyramid.ImagePyramid`) and the
    five layers relu1_1 … relu5_1. The real image is a constant target (no gradient). VGG19 runs only up to
    the deepest layer with a non-zero weight.
    """
    depth = max((i + 1 for i, w in enumerate(weights) if w), default=0)
    terms = []
    for scale, real in (real_pyramid.items() if depth else ()):
        with torch.no_grad():
            real_feats = vgg(real.detach(), depth)
        fake_feats = vgg(fake_pyramid[scale], depth)
        terms += [w * (fr - ff).abs().mean() for w, fr, ff in zip(weights[:depth], real_feats, fake_feats, strict=True)
                  if w]
    return torch.stack(terms).sum() if terms else next(iter(fake_pyramid.values())).new_zeros(())


def hinge_discriminator_loss(real: DiscOutputs, fake: DiscOutputs) -> torch.Tensor:
    """Hinge GAN loss of the multi-scale patch discriminator (OSFV, ``gan_mode: hinge``).

    Σ_scales mean max(0, 1 − D(real)) + mean max(0, 1 + D(fake)). Pass the generated image
    detached when computing ``fake``.
    """
    terms = [F.relu(1 - pred_real).mean() + F.relu(1 + fake[scale][1]).mean() for scale, (_, pred_real) in real.items()]
    return torch.stack(terms).sum()


def hinge_generator_loss(fake: DiscOutputs) -> torch.Tensor:
    """Generator side of the hinge GAN loss (OSFV): Σ_scales −mean D(fake)."""
    return -torch.stack([pred_fake.mean() for _, pred_fake in fake.values()]).sum()


def feature_matching_loss(real: DiscOutputs, fake: DiscOutputs, weight: float | Sequence[float]) -> torch.Tensor:
    """Discriminator feature matching (OSFV/FOMM L_F, after pix2pixHD).

    Σ_scales Σ_i weight_i · mean |F_i(real) − F_i(fake)| over the discriminator's feature maps;
    ``weight`` is one number for every layer or one per layer. Real features are targets
    (detached).
    """
    terms = []
    for scale, (feats_real, _) in real.items():
        feats_fake = fake[scale][0]
        weights = [weight] * len(feats_real) if isinstance(weight, int | float) else list(weight)
        terms += [w * (a.detach() - b).abs().mean()
                  for w, a, b in zip(weights, feats_real, feats_fake, strict=True) if w]
    return torch.stack(terms).sum() if terms else next(iter(fake.values()))[1].new_zeros(())


def equivariance_loss(kp_driving: torch.Tensor, kp_of_warped: torch.Tensor, warp: RandomWarp) -> torch.Tensor:
    """Keypoint equivariance (OSFV/FOMM L_E): mean |K_xy − T(K'_xy)|.

    ``kp_driving`` (B, k, 3): keypoints of the frame; ``kp_of_warped`` (B, k, 3): keypoints of
    ``warp.warp_image(frame)``. Only x, y are compared (the warp is 2D), after mapping the
    warped frame's keypoints back through the warp.
    """
    return (kp_driving[..., :2] - warp.warp_coordinates(kp_of_warped[..., :2])).abs().mean()


def keypoint_prior_loss(kp: torch.Tensor, distance: float, depth: float) -> torch.Tensor:
    """Keypoint prior (OSFV L_L): spread the keypoints out and hold their mean depth.

    For ``kp`` (B, k, 3): Σ_{i≠j} max(0, D_t − ‖K_i − K_j‖²) + |mean_i z(K_i) − z_t|, averaged
    over the batch (D_t = ``distance``, z_t = ``depth``; OSFV: 0.1 and 0.33). Ordered pairs, so
    each unordered pair counts twice, as in OSFV's double loop; i = j is left out.
    """
    k = kp.shape[1]
    sq_dist = (kp.unsqueeze(2) - kp.unsqueeze(1)).pow(2).sum(-1)                  # (B, k, k)
    off_diag = ~torch.eye(k, dtype=torch.bool, device=kp.device)
    spread = F.relu(distance - sq_dist)[:, off_diag].sum(-1)                    # (B,)
    mean_depth = (kp[..., 2].mean(-1) - depth).abs()                            # (B,)
    return (spread + mean_depth).mean()


def headpose_loss(yaw_logits: torch.Tensor, pitch_logits: torch.Tensor, roll_logits: torch.Tensor,
                  target_degrees: torch.Tensor) -> torch.Tensor:
    """Head-pose supervision of the estimator (OSFV L_H): Σ_{yaw,pitch,roll} mean |predicted° − target°|.

    Logits (B, 66) each, read as the softmax expectation of the bin value (bin i ↦ 3i − 99°,
    OSFV's ``headpose_pred_to_degree``; :func:`eat.models.keypoints.bins_to_degrees`);
    ``target_degrees`` (B, 3) = (yaw, pitch, roll) in degrees from a pretrained pose estimator
    (OSFV: Hopenet).
    """
    pred = torch.stack([bins_to_degrees(x) for x in (yaw_logits, pitch_logits, roll_logits)], dim=-1)
    return (pred - target_degrees).abs().mean(0).sum()


def deformation_prior_loss(expression: torch.Tensor) -> torch.Tensor:
    """Deformation prior (OSFV L_Δ): mean over the batch of Σ |E| for ``expression`` (B, k, 3).

    Used by OSFV; the paper's enhanced latent trains without it (Sec. 3.1.1).
    """
    return expression.abs().flatten(1).sum(-1).mean()


def face_mask(landmarks: np.ndarray | torch.Tensor, size: int, margin: float) -> np.ndarray:
    """(B, 68, 2) iBUG landmarks in pixels (x, y) → (B, 1, size, size) float32 numpy mask of the face region.

    The filled convex hull of the landmarks, scaled about its area centroid by (1 + margin),
    i.e. grown by ``margin`` × the hull's extent (the enhanced latent's face-region losses,
    Sec. 3.1.1). Pixel centres are at integer coordinates; drawn with cv2 at 1/16-pixel
    precision, deterministic. cv2 fills every pixel whose centre is inside or on the polygon,
    so the mask exceeds the exact hull area by up to about half its perimeter in pixels.
    """
    pts = np.asarray(landmarks.detach().cpu() if isinstance(landmarks, torch.Tensor) else landmarks,
                     dtype=np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 2:
        raise ValueError(f"face_mask: landmarks must be (B, 68, 2), got {pts.shape}")
    masks = np.zeros((pts.shape[0], 1, size, size), dtype=np.uint8)
    shift = 4
    for b, p in enumerate(pts):
        if not np.isfinite(p).all():
            raise ValueError(f"face_mask: landmarks of batch item {b} are not finite (missing detection?)")
        hull = cv2.convexHull(p.astype(np.float32)).reshape(-1, 2).astype(np.float64)
        m = cv2.moments(hull.astype(np.float32))
        centre = np.array([m["m10"] / m["m00"], m["m01"] / m["m00"]]) if m["m00"] > 0 else hull.mean(0)
        grown = centre + (1 + margin) * (hull - centre)
        fixed = np.round(grown * (1 << shift)).astype(np.int32)
        cv2.fillConvexPoly(masks[b, 0], fixed, 1, lineType=cv2.LINE_8, shift=shift)
    return masks.astype(np.float32)


def masked_l1(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 over the masked pixels (the enhanced latent's face-region L1, Sec. 3.1.1).

    ``real``, ``fake`` (B, C, H, W); ``mask`` (B, 1, H, W) in [0, 1]. Σ mask·|real − fake| /
    (C · Σ mask); 0 for an empty mask.
    """
    mask = mask.to(fake.dtype)
    num = (mask * (real - fake).abs()).sum()
    return num / (mask.sum() * real.shape[1]).clamp_min(1e-8)
