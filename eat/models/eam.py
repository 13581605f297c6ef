"""Emotional Adaptation Module (EAM, Sec. 3.2 of the paper): channel-wise modulation by the emotion token e0.

    γ, β = tanh(FC(ReLU(FC(e0))))        EAM(x) = x ⊙ (1 + γ) + β

The hidden width is C / 8 and the output 2C (γ then β), as in the official EA3DModule / EAModule
(836 parameters for C = 32, e0 ∈ R^128). The generator's 3D EAM modulates the appearance volume.
"""

from __future__ import annotations

import torch
from torch import nn


class EAM(nn.Module):
    """x (B, C, *spatial) (2D or 3D), e0 (B, emotion_dim) → x ⊙ (1 + γ) + β; the identity when ``emotion`` is None."""

    def __init__(self, channels: int, emotion_dim: int):
        super().__init__()
        hidden = channels // 8
        self.fc = nn.Sequential(nn.Linear(emotion_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * channels))

    def forward(self, x: torch.Tensor, emotion: torch.Tensor | None = None) -> torch.Tensor:
        if emotion is None:
            return x
        gamma, beta = torch.tanh(self.fc(emotion)).chunk(2, dim=1)
        broadcast = (*gamma.shape, *([1] * (x.dim() - 2)))        # (B, C, 1, 1[, 1])
        return x * (1 + gamma.view(broadcast)) + beta.view(broadcast)
