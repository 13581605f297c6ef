"""One optimisation step of the latent model: the OSFV objective and the paper's "enhanced" changes.

Generator side (Sec. 3.1.1; face-vid2vid Sec. 3.3): canonical keypoints K_c of the source,
head pose and expression of source and driving, K = R K_c + T + E for both (Eq. 1), the
RePos-Net renders the driving frame from the source, and

    L = L_perceptual (VGG19, image pyramid) + L_GAN (hinge) + L_feature_matching
        + L_equivariance + L_keypoint_prior + L_head_pose [+ L_deformation_prior] [+ L1]

``osfv`` mode keeps the deformation (expression) prior and scores whole frames (with
``l1_weight`` > 0 also by a pixel L1: the perceptual loss alone, with the substitute VGG19
and a few hundred steps, leaves colours and background loose, and PSNR measures exactly those). ``enhanced``
mode drops the deformation prior (the paper's change: expressions may deform freely) and
scores the reconstruction on the face region only (perceptual on face-masked frames plus an
L1 on the face), with the neutral→emotional pairs of :mod:`eat.latent.data`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from eat.config import LatentTrainConfig
from eat.latent.data import Batch
from eat.latent.losses import (
    deformation_prior_loss,
    equivariance_loss,
    face_mask,
    feature_matching_loss,
    headpose_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    keypoint_prior_loss,
    masked_l1,
    perceptual_loss,
)
from eat.latent.transforms import RandomWarp
from eat.latent.vgg import VGG19Features
from eat.models.keypoints import compose_keypoints
from eat.models.latent import LatentNetworks
from eat.models.pyramid import ImagePyramid


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matrix products run natively on ``device``."""
    return device.type == "cuda" or torch.ops.mkldnn._is_mkldnn_bf16_supported()


@dataclass
class Objective:
    """The loss terms of one variant, with the fixed helpers they need (VGG19, image pyramid)."""

    cfg: LatentTrainConfig
    mode: str
    vgg: VGG19Features
    pyramid: ImagePyramid

    @property
    def face_only(self) -> bool:
        return self.mode == "enhanced"

    def precision(self, device: torch.device) -> torch.autocast:
        """bf16 autocast when ``latent_train.bf16`` and the hardware runs bf16 natively (oneDNN with AVX512-BF16 /
        AMX on CPU, any CUDA GPU); fp32 master weights. Without native support (e.g. AVX2-only CPUs) bf16 is
        emulated and ~100× slower, so fp32 is used."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16 and native_bf16(device))

    def generator_losses(self, nets: LatentNetworks, batch: Batch, step_seed: int
                         ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """Weighted loss terms (fp32), the prediction (B, 3, S, S) and the face mask (None in osfv mode)."""
        with self.precision(batch.source.device):
            terms, prediction, mask = self._generator_terms(nets, batch, step_seed)
        return {k: v.float() for k, v in terms.items()}, prediction, mask

    def _generator_terms(self, nets: LatentNetworks, batch: Batch, step_seed: int
                         ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor | None]:
        cfg = self.cfg
        canonical = nets.kp_detector(batch.source)
        # one estimator call on source, driving (and the equivariance warp of driving): one BatchNorm batch
        images = [batch.source, batch.driving]
        if cfg.equivariance_weight > 0:
            warp = RandomWarp(batch.driving.shape[0], cfg.affine_sigma, cfg.tps_sigma, cfg.tps_points,
                              generator=torch.Generator().manual_seed(step_seed))
            images.append(warp.warp_image(batch.driving))
        pose_source, pose_driving, *pose_warped = nets.he_estimator(torch.cat(images)).split([len(batch.source)] *
                                                                                              len(images))
        kp_source = compose_keypoints(canonical, *pose_source.transform())
        kp_driving = compose_keypoints(canonical, *pose_driving.transform())
        prediction = nets.generator(batch.source, kp_source, kp_driving)["prediction"]

        mask = None
        real, fake = batch.driving, prediction
        terms: dict[str, torch.Tensor] = {}
        if self.face_only:
            mask = torch.from_numpy(face_mask(batch.driving_landmarks, real.shape[-1], cfg.face_margin)).to(real.device)
            real, fake = real * mask, fake * mask
            terms["face_l1"] = cfg.face_l1_weight * masked_l1(batch.driving, prediction, mask)
        elif cfg.l1_weight > 0:
            terms["l1"] = cfg.l1_weight * (batch.driving - prediction).abs().mean()
        terms["perceptual"] = perceptual_loss(self.pyramid(real), self.pyramid(fake), self.vgg,
                                              cfg.perceptual_weights)
        if cfg.gan_weight > 0:
            disc_fake = nets.discriminator(prediction)
            with torch.no_grad():
                disc_real = nets.discriminator(batch.driving)
            terms["gan"] = cfg.gan_weight * hinge_generator_loss(disc_fake)
            terms["feature_matching"] = feature_matching_loss(disc_real, disc_fake, cfg.feature_matching_weight)
        if cfg.equivariance_weight > 0:
            kp_warped = compose_keypoints(canonical, *pose_warped[0].transform())
            terms["equivariance"] = cfg.equivariance_weight * equivariance_loss(kp_driving, kp_warped, warp)
        terms["keypoint_prior"] = cfg.keypoint_prior_weight * keypoint_prior_loss(
            kp_driving, cfg.keypoint_prior_distance, cfg.keypoint_prior_depth)
        terms["headpose"] = cfg.headpose_weight * headpose_loss(
            pose_driving.yaw, pose_driving.pitch, pose_driving.roll, batch.driving_pose)
        if not self.face_only:
            terms["deformation_prior"] = cfg.deformation_prior_weight * deformation_prior_loss(pose_driving.expression)
        return terms, prediction, mask

    def discriminator_loss(self, nets: LatentNetworks, batch: Batch, prediction: torch.Tensor) -> torch.Tensor:
        """Hinge loss of the multi-scale discriminator on real driving frames vs the (detached) predictions."""
        with self.precision(batch.source.device):
            loss = hinge_discriminator_loss(nets.discriminator(batch.driving), nets.discriminator(prediction.detach()))
        return self.cfg.gan_weight * loss.float()
