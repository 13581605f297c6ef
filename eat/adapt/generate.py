"""Emotional generation with an adapted model: emotion codes (one emotion, a mix, or an intensity) → a clip.

The mapper turns a latent code z and an emotion into (e0, prompts) (Sec. 3.2). Beyond the paper's one-hot
emotions, codes of several emotions for the same z can be mixed linearly — ``{"happy": 0.5, "surprised": 0.5}``
— and an intensity α scales an emotion from neutral: α · codes(emotion) + (1 − α) · codes(neutral) (Fig. 12
interpolates between two emotions' codes the same way). :func:`emotional_video` renders a clip under such codes
through :func:`eat.render_clip.generate_clip`, the one generation path.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from eat.a2et.data import A2ETClip
from eat.adapt.model import EmotionalModel, emotion_index
from eat.render_clip import emotional_predictor, generate_clip

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


def emotional_video(model: EmotionalModel, clip: A2ETClip, codes: Codes, half: int, relative: bool = False,
                    batch_size: int = 64) -> np.ndarray:
    """(T, S, S, 3) uint8 frames of ``clip`` (its audio, head pose and source) under emotion ``codes``; e0 drives
    the 3D EAM when the variant has it. ``relative``: LRW's protocol (:func:`eat.render_clip.relative_keypoints`)."""
    return generate_clip(model.generator, emotional_predictor(model, codes), clip, half, model.basis,
                         emotion=codes[0] if model.variant.eam else None, relative=relative,
                         batch_size=batch_size).frames
