"""A2ET's losses (Sec. 3.3): L = λ_lat L_lat + λ_sync L_sync + λ_rec L_rec.

- L_lat (:func:`latent_terms`, the one implementation: A2ET pretraining, the emotional adaptation and zero-shot
  editing all call it): PCA term on PÊ against PE and keypoint term on K̂ = R K_c + T + Ê against K, with
  Ê = PÊ · U[:, :n]ᵀ + M (:meth:`eat.latent.pca.ExpressionBasis.decode`), each a mean squared error.
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
from eat.sync.wav2lip_expert import face_window, mel_window, sync_loss


def latent_terms(latent_weight: float, kp_hat: torch.Tensor, kp: torch.Tensor, pca_weight: float = 0.0,
                 pe_hat: torch.Tensor | None = None, pe: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Weighted L_lat terms: ``latent`` = λ · mean (K̂ − K)² over (B, k, 3) and, given PÊ and PE, ``pca`` =
    λ_pca · mean (PÊ − PE)² over (B, n). A weight of 0 drops its term.

    Mean, not the paper's sum: Sec. 3.3 writes L_lat with squared norms ‖PE − PÊ‖² + ‖K − K̂‖² (summed over
    the n = 32 coefficients and the 3k = 45 keypoint numbers), but the official code takes ``F.mse_loss``
    (the mean over every element), and the official weights (docs/paper_notes.md §4) belong to that mean. Every
    copy this function replaced (A2ET, adaptation, zero-shot editing) already averaged, so the recipe's numbers are
    unchanged; the paper's summed form is this one with the weights multiplied by 45 (keypoints) and n (PCA).
    """
    terms: dict[str, torch.Tensor] = {}
    if pca_weight > 0 and pe_hat is not None:
        terms["pca"] = pca_weight * F.mse_loss(pe_hat, pe)
    if latent_weight > 0:
        terms["latent"] = latent_weight * F.mse_loss(kp_hat, kp)
    return terms


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
