"""Emotional generation with an adapted model: emotion codes (one emotion, a mix, or an intensity) → a clip.

The mapper turns a latent code z and an emotion into (e0, prompts) (Sec. 3.2). Beyond the paper's one-hot
emotions, codes of several emotions for the same z can be mixed linearly — ``{"happy": 0.5, "surprised": 0.5}``
— and an intensity α scales an emotion from neutral: α · codes(emotion) + (1 − α) · codes(neutral) (Fig. 12
interpolates between two emotions' codes the same way).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from eat.a2et.data import A2ETClip, window_batch
from eat.adapt.model import EmotionalModel, emotion_index
from eat.latent.data import to_tensor
from eat.models.keypoints import compose_keypoints

Codes = tuple[torch.Tensor, torch.Tensor]   # e0 (d,), prompts (P, d)


@torch.no_grad()
def emotion_codes(model: EmotionalModel, mix: Mapping[str, float], z: torch.Tensor) -> Codes:
    """Codes of the weighted emotion mix (weights need not sum to 1) for one latent code z (z_dim,)."""
    if not mix:
        raise ValueError("an emotion mix needs at least one emotion")
    labels = torch.tensor([emotion_index(name) for name in mix], device=z.device)
    weights = torch.tensor(list(mix.values()), dtype=torch.float32, device=z.device)
    e0, prompts = model.codes(z.expand(len(labels), -1), labels)
    return (weights[:, None] * e0).sum(0), (weights[:, None, None] * prompts).sum(0)


def intensity_mix(emotion: str, intensity: float) -> dict[str, float]:
    """``emotion`` at ``intensity`` ∈ [0, 1] as a mix with neutral (1 is the emotion's own code)."""
    if not 0 <= intensity <= 1:
        raise ValueError(f"intensity {intensity} is outside [0, 1]")
    emotion_index(emotion)
    if emotion == "neutral" or intensity == 1:
        return {emotion: 1.0}
    return {emotion: float(intensity), "neutral": float(1 - intensity)}


def latent_code(model: EmotionalModel, seed: int) -> torch.Tensor:
    """The fixed z (z_dim,) ~ N(0, I) of a seed: generation is reproducible."""
    return torch.randn(model.z_dim, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def clip_keypoints(model: EmotionalModel, clip: A2ETClip, codes: Codes, half: int, batch_size: int = 64,
                   relative: bool = False) -> torch.Tensor:
    """Driving keypoints (T, k, 3) of every frame of ``clip`` under emotion ``codes``.

    ``relative`` (the LRW protocol): each frame keeps its predicted expression's offset from frame 0, applied to
    the source's own expression, E'_i = E_src + (Ê_i − Ê_0); K is linear in E, so K shifts by E_src − Ê_0.
    """
    model.eval()
    e0, prompts = codes
    out = []
    for start in range(0, clip.n_frames, batch_size):
        centres = np.arange(start, min(start + batch_size, clip.n_frames))
        batch = window_batch([clip], np.zeros(len(centres), int), centres, half)
        out.append(model.keypoints(batch, e0.expand(len(centres), -1), prompts.expand(len(centres), -1, -1))[1])
    kp = torch.cat(out)
    if relative:
        first = window_batch([clip], np.zeros(1, int), np.zeros(1, int), half)
        rigid = compose_keypoints(first.canonical, first.rotation, first.translation, torch.zeros_like(kp[:1]))
        e_first = kp[:1] - rigid
        e_source = model.path.expression(torch.from_numpy(clip.source.pe[None]))
        kp = kp + (e_source - e_first)
    return kp


@torch.no_grad()
def generate_clip(model: EmotionalModel, clip: A2ETClip, codes: Codes, half: int, batch_size: int = 64,
                  relative: bool = False) -> np.ndarray:
    """(T, S, S, 3) uint8 frames of ``clip`` (its audio, head pose and source) under emotion ``codes``."""
    kp = clip_keypoints(model, clip, codes, half, batch_size, relative)
    e0 = codes[0] if model.variant.eam else None
    volume = model.generator.appearance(to_tensor(clip.source.frame[None]))
    kp_source = torch.from_numpy(clip.source.keypoints[None])
    frames = []
    for start in range(0, clip.n_frames, batch_size):
        k = kp[start:start + batch_size]
        n = len(k)
        out = model.generator.render(volume.expand(n, -1, -1, -1, -1), kp_source.expand(n, -1, -1), k,
                                     None if e0 is None else e0.expand(n, -1))["prediction"]
        frames.append((out.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(frames)
