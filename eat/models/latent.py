"""The 3D latent model of Sec. 3.1.1 as one module: keypoint detector, head-pose/expression estimator,
RePos-Net generator and the training discriminator, built from :class:`eat.config.LatentConfig`.

Submodule names are the official checkpoint's keys (``kp_detector``, ``he_estimator``,
``generator``), so ``networks.generator.load_state_dict(ckpt["generator"])`` works on converted weights.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from torch import nn

from eat.config import LatentConfig
from eat.models.discriminator import MultiScaleDiscriminator
from eat.models.head_pose import HeadPoseExpressionEstimator
from eat.models.keypoint_detector import KeypointDetector
from eat.models.repos_net import RePosNet


class LatentNetworks(nn.Module):
    """kp_detector (D_k), he_estimator (R, T, E), generator (RePos-Net, with its 3D EAM), discriminator."""

    def __init__(self, kp_detector: KeypointDetector, he_estimator: HeadPoseExpressionEstimator,
                 generator: RePosNet, discriminator: MultiScaleDiscriminator):
        super().__init__()
        self.kp_detector = kp_detector
        self.he_estimator = he_estimator
        self.generator = generator
        self.discriminator = discriminator

    @classmethod
    def from_config(cls, cfg: LatentConfig) -> LatentNetworks:
        return cls(KeypointDetector(cfg), HeadPoseExpressionEstimator(cfg), RePosNet(cfg), MultiScaleDiscriminator(cfg))


@cache
def official_manifest() -> dict[str, dict[str, list[int]]]:
    """The official EAT release's state dicts: module key (``generator``, ``kp_detector``, ``he_estimator``,
    ``audio2kptransformer``, ``sidetuning``, ``emotionprompt``) → tensor name → shape.

    Shipped as package data (``eat/models/official_shapes.json``); the architecture tests compare our networks
    at ``configs/paper.yaml`` with it, and ``eat import-official`` names it when a checkpoint does not fit.
    """
    text = resources.files("eat.models").joinpath("official_shapes.json").read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def official_state_dict_shapes(module: nn.Module) -> dict[str, list[int]]:
    """``state_dict`` names → shapes, in the layout of :func:`official_manifest`."""
    return {name: list(t.shape) for name, t in module.state_dict().items()}


def parameter_count(module: nn.Module) -> int:
    """Trainable and frozen parameters (not buffers such as BatchNorm statistics or spectral-norm vectors)."""
    return sum(p.numel() for p in module.parameters())
