"""Fig. 6 at the paper profile: the networks instantiated at ``configs/paper.yaml`` on the meta device (names,
shapes and counts without allocating 204 M parameters), split by :func:`eat.models.adaptation.parameter_shares`."""

from __future__ import annotations

from pathlib import Path

import torch

from eat.config import deep_merge, parse_params, read_yaml
from eat.models.adaptation import ExpressionNetworks, parameter_shares
from eat.models.keypoint_detector import KeypointDetector
from eat.models.repos_net import RePosNet
from eat.paths import PAPER_PROFILE


def paper_profile_shares(params_path: Path | str = "params.yaml",
                         overlay_path: Path | str = PAPER_PROFILE) -> dict[str, float]:
    """``{mapper, edn, eam, adaptation: percent, total_parameters, adaptation_parameters}`` at the paper profile."""
    params = parse_params(deep_merge(read_yaml(params_path), read_yaml(overlay_path)), overlay_path)
    with torch.device("meta"):
        expression = ExpressionNetworks.from_params(params)
        modules = {"generator": RePosNet(params.latent), "kp_detector": KeypointDetector(params.latent),
                   **dict(expression.named_children())}
    shares = parameter_shares(modules)
    return {**{p: shares.percent(p) for p in ("mapper", "edn", "eam", "adaptation")},
            "total_parameters": float(shares.total), "adaptation_parameters": float(shares.adaptation)}
