"""A2ET's losses (Sec. 3.3): L = λ_lat L_lat + λ_sync L_sync + λ_rec L_rec, and the PE → E → K path they share.

- L_lat: ‖PE − PÊ‖² (``pca``) + ‖K − K̂‖² (``latent``), K̂ = R K_c + T + Ê with Ê = PÊ · U[:, :n]ᵀ + M.
- L_sync: −log cos(v, s) of the frozen lip-sync expert on ``frames`` consecutive rendered frames and their mel.
- L_rec: L1 on the face region (landmark hull of the ground truth) + VGG19 perceptual loss on the whole
  frame (image pyramid), the frames rendered by the frozen RePos-Net from the clip's source frame.

Phase ``latent`` uses L_lat alone; phase ``full`` all three (weights per phase in ``a2et_train``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eat.config import A2ETPhaseConfig
from eat.latent.losses import face_mask, masked_l1, perceptual_loss
from eat.latent.pca import ExpressionBasis
from eat.models.keypoints import compose_keypoints
from eat.sync.wav2lip_expert import face_window, mel_window, sync_loss


class ExpressionPath(nn.Module):
    """PCA coefficients PE (B, n) → expression deformation E (B, k, 3) → keypoints K (Eq. 1), differentiable."""

    def __init__(self, basis: ExpressionBasis):
        super().__init__()
        self.register_buffer("axes", torch.from_numpy(basis.axes[:, : basis.n].copy()))
        self.register_buffer("mean", torch.from_numpy(basis.mean.copy()))

    def expression(self, pe: torch.Tensor) -> torch.Tensor:
        return (pe @ self.axes.T + self.mean).view(len(pe), -1, 3)

    def keypoints(self, pe: torch.Tensor, canonical: torch.Tensor, rotation: torch.Tensor,
                  translation: torch.Tensor) -> torch.Tensor:
        return compose_keypoints(canonical, rotation, translation, self.expression(pe))


def latent_terms(cfg: A2ETPhaseConfig, path: ExpressionPath, pe_hat: torch.Tensor, batch) -> dict[str, torch.Tensor]:
    """Weighted L_lat terms for a :class:`~eat.a2et.data.WindowBatch` and its predictions PÊ (B, n)."""
    kp_hat = path.keypoints(pe_hat, batch.canonical, batch.rotation, batch.translation)
    return {"pca": cfg.pca_weight * F.mse_loss(pe_hat, batch.pe),
            "latent": cfg.latent_weight * F.mse_loss(kp_hat, batch.keypoints)}


def render(generator: nn.Module, source: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor,
           per_source: int) -> torch.Tensor:
    """Frames (B·L, 3, S, S) from B source images (B, 3, S, S), each driving ``per_source`` = L frames.

    The source's appearance volume is computed once per source, without gradient (RePos-Net is frozen);
    gradients reach the driving keypoints.
    """
    with torch.no_grad():
        volume = generator.appearance(source)
    volume = volume.repeat_interleave(per_source, dim=0)
    kp_source = kp_source.repeat_interleave(per_source, dim=0)
    return generator.render(volume, kp_source, kp_driving)["prediction"]


def render_terms(cfg: A2ETPhaseConfig, prediction: torch.Tensor, runs, parts, face_margin: float
                 ) -> dict[str, torch.Tensor]:
    """Weighted L_rec and L_sync terms of frames rendered for a :class:`~eat.a2et.data.RunBatch`.

    prediction: (B·L, 3, S, S) rendered frames of B runs of L consecutive frames; ``parts``: the frozen lip-sync
    ``expert``, ``vgg`` and image ``pyramid`` (:class:`eat.a2et.train.RenderingParts`).
    """
    terms: dict[str, torch.Tensor] = {}
    real = runs.real
    if cfg.l1_weight > 0:
        mask = torch.from_numpy(face_mask(runs.landmarks, real.shape[-1], face_margin)).to(real.device)
        terms["face_l1"] = cfg.l1_weight * masked_l1(real, prediction, mask)
    if any(w > 0 for w in cfg.perceptual_weights):
        terms["perceptual"] = perceptual_loss(parts.pyramid(real), parts.pyramid(prediction), parts.vgg,
                                              cfg.perceptual_weights)
    if cfg.sync_weight > 0:
        b, length = runs.mel.shape[:2]
        faces = face_window(prediction.view(b, length, *prediction.shape[1:]), parts.expert.cfg.face_size)
        terms["sync"] = cfg.sync_weight * sync_loss(parts.expert.embed_audio(mel_window(runs.mel)),
                                                    parts.expert.embed_face(faces))
    return terms
