"""A clip's frames from its audio, head pose and source image: the one generation path of the project.

    A2ETClip windows ──predictor──▶ PÊ_i, K̂_i = R_i K_c + T_i + Ê_i (Eq. 1)   [relative: + E_src − Ê_0]
    K̂ ──RePos-Net bound to the source (appearance volume once; e0 drives the 3D EAM)──▶ (T, S, S, 3) uint8

A predictor maps a :class:`~eat.a2et.data.WindowBatch` to (PÊ, K̂): :func:`a2et_predictor` (the pretrained,
emotion-agnostic A2ET), :func:`emotional_predictor` (an adapted model under emotion codes: prompts, EDN's ΔE,
EAMs) or :func:`held_expression` (a fixed expression, only the pose moves: A2ET's ``pose_only`` baseline).
:func:`generate_clip` runs one clip end to end. A2ET's held-out evaluation, the adaptation's held-out scoring
and Fig. 5 curve, the ``evaluate`` stage, ``emotion_control`` and ``eat generate`` all render through it
(``eat generate`` streams chunk by chunk with :func:`predict_keypoints` and :class:`SourceRenderer`, the same
two steps). Before, three copies rendered clips and LRW's relative keypoints were computed twice, once on PCA
coefficients and once on keypoints; :func:`relative_keypoints` is now the only one (docs/paper_notes.md §7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from eat.a2et.data import A2ETClip, Source, WindowBatch, window_batch
from eat.latent.data import to_tensor
from eat.latent.pca import ExpressionBasis
from eat.models.keypoints import compose_keypoints

Predictor = Callable[[WindowBatch], tuple[torch.Tensor, torch.Tensor]]   # windows → (PÊ (B, n), K̂ (B, k, 3))


def a2et_predictor(a2et: nn.Module, basis: ExpressionBasis, clip: A2ETClip) -> Predictor:
    """The pretrained A2ET on ``clip``: its source face feature computed once, E = decode(PÊ), no emotion."""
    a2et.eval()
    with torch.no_grad():
        face = a2et.face_feature(torch.from_numpy(clip.source.logits[None]))

    def predict(b: WindowBatch) -> tuple[torch.Tensor, torch.Tensor]:
        pe = a2et(b.speech, b.pose, b.pose_image, b.mel, face)
        return pe, compose_keypoints(b.canonical, b.rotation, b.translation, basis.decode(pe))

    return predict


def emotional_predictor(model: nn.Module, codes: tuple[torch.Tensor, torch.Tensor]) -> Predictor:
    """An adapted :class:`~eat.adapt.model.EmotionalModel` under one emotion's codes (e0 (d,), prompts (P, d))."""
    model.eval()
    e0, prompts = codes
    return lambda b: model.keypoints(b, e0.expand(len(b), -1), prompts.expand(len(b), -1, -1))


def held_expression(basis: ExpressionBasis, pe: np.ndarray) -> Predictor:
    """The expression of coefficients ``pe`` (n,) in every frame, whatever the audio: only the head pose moves."""
    def predict(b: WindowBatch) -> tuple[torch.Tensor, torch.Tensor]:
        held = torch.from_numpy(pe[None]).to(b.canonical.device).expand(len(b), -1)
        return held, compose_keypoints(b.canonical, b.rotation, b.translation, basis.decode(held))

    return predict


@torch.no_grad()
def predict_keypoints(predict: Predictor, clip: A2ETClip, half: int, batch_size: int = 64,
                      centres: np.ndarray | None = None, device: torch.device | str = "cpu"
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(PÊ (T, n), K̂ (T, k, 3)) of the windows of 2·half + 1 frames centred on ``centres`` (default: every frame
    of ``clip``), ``batch_size`` windows per pass."""
    centres = np.arange(clip.n_frames) if centres is None else centres
    pe, kp = [], []
    for start in range(0, len(centres), batch_size):
        part = centres[start:start + batch_size]
        p, k = predict(window_batch([clip], np.zeros(len(part), int), part, half, device))
        pe.append(p)
        kp.append(k)
    return torch.cat(pe), torch.cat(kp)


def relative_keypoints(kp: torch.Tensor, clip: A2ETClip, basis: ExpressionBasis) -> torch.Tensor:
    """LRW's relative keypoints: each frame keeps its predicted expression's change since frame 0, applied to the
    source's own expression, E'_i = E_src + (Ê_i − Ê_0) with E_src = decode(PE_src); the head pose stays absolute.

    Computed on keypoints, after EDN's ΔE (so an adapted model's offsets count too): K is linear in E, so
    K'_i = K̂_i + E_src − Ê_0 with Ê_0 = K̂_0 − (R_0 K_c + T_0). The former PCA-space copy (PE'_i = PE_src + PÊ_i −
    PÊ_0, pretrained model only) is the same number for A2ET (|ΔK| ≤ 6e-8 on the test fixture). The official
    ``normalize_kp`` (docs/paper_notes.md §7) adds K̂_i − K̂_0 to the source's full keypoints instead: it differs
    from this by the source expression's PCA residual E_src − decode(encode(E_src)), constant over the clip.
    """
    canonical, rotation, translation = (torch.from_numpy(a[None]).to(kp)
                                        for a in (clip.source.canonical, clip.rotation[0], clip.translation[0]))
    first = kp[:1] - compose_keypoints(canonical, rotation, translation, torch.zeros_like(kp[:1]))
    return kp + (basis.decode(torch.from_numpy(clip.source.pe[None]).to(kp)) - first)


class SourceRenderer:
    """RePos-Net bound to one source: its appearance volume made once, then driving keypoints → uint8 frames.
    ``emotion`` (e0, (d,)) drives the 3D EAM of an adapted model; None renders without it."""

    @torch.no_grad()
    def __init__(self, generator: nn.Module, source: Source, emotion: torch.Tensor | None = None,
                 device: torch.device | str = "cpu"):
        self.generator, self.emotion = generator, emotion
        self.volume = generator.appearance(to_tensor(source.frame[None]).to(device))
        self.kp_source = torch.from_numpy(source.keypoints[None]).to(device)

    @torch.no_grad()
    def __call__(self, kp: torch.Tensor) -> np.ndarray:
        """(n, S, S, 3) uint8 frames of driving keypoints ``kp`` (n, k, 3), one pass."""
        n = len(kp)
        out = self.generator.render(self.volume.expand(n, -1, -1, -1, -1), self.kp_source.expand(n, -1, -1), kp,
                                    None if self.emotion is None else self.emotion.expand(n, -1))["prediction"]
        return (out.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


RENDER_BATCH = 16
"""Frames per RePos-Net pass when rendering a clip: on 2 CPU cores at 64² a frame costs 15.3 ms in passes of 16,
22.5 ms in passes of 64 or 128 (the activations of a larger pass fall out of the caches)."""


@dataclass(frozen=True)
class RenderedClip:
    frames: np.ndarray        # (T, S, S, 3) uint8
    keypoints: torch.Tensor   # (T, k, 3) the driving keypoints rendered (relative ones where asked)
    pe: torch.Tensor          # (T, n) the predicted PCA coefficients


@torch.no_grad()
def generate_clip(generator: nn.Module, predict: Predictor, clip: A2ETClip, half: int, basis: ExpressionBasis, *,
                  emotion: torch.Tensor | None = None, relative: bool = False, batch_size: int = 64,
                  render_batch: int = RENDER_BATCH) -> RenderedClip:
    """Every frame of ``clip`` (its audio and head pose, driving its source) with ``predict``'s keypoints.

    ``relative``: LRW's protocol (:func:`relative_keypoints`); ``emotion``: e0 for RePos-Net's 3D EAM;
    ``batch_size`` windows per predictor pass, ``render_batch`` frames per RePos-Net pass.
    """
    pe, kp = predict_keypoints(predict, clip, half, batch_size)
    if relative:
        kp = relative_keypoints(kp, clip, basis)
    render = SourceRenderer(generator, clip.source, emotion)
    frames = np.concatenate([render(kp[s:s + render_batch]) for s in range(0, len(kp), render_batch)])
    return RenderedClip(frames, kp, pe)
