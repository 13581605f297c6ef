"""An adapted model's network and its ``model.pt``: build, save and load.

``model.pt`` holds the variant, its adaptation tensors (the trainable ones, :func:`adaptation_state`), the steps
trained, the pretrained files they sit on and the config sections they were trained under. Kept apart from the
training loop (:mod:`eat.adapt.train`) so that what reads adapted models (held-out scoring in
:mod:`eat.adapt.heldout`, evaluation, generation) depends on this file format only, not on training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from eat.adapt.model import EmotionalModel
from eat.config import AdaptationVariant, Params
from eat.io.torch_files import save_torch_atomic
from eat.latent.pca import ExpressionBasis
from eat.latent.train import load_inference_model


def build_model(params: Params, variant: AdaptationVariant, basis: ExpressionBasis, latent_model: str | Path,
                device: torch.device | str = "cpu") -> EmotionalModel:
    """The variant's network around the frozen RePos-Net of ``latent_model`` (adaptation modules untrained)."""
    generator = load_inference_model(latent_model, device).generator
    return EmotionalModel(params, variant, basis, generator).to(device)


def adaptation_state(model: EmotionalModel) -> dict[str, torch.Tensor]:
    """What adaptation changes (for checkpoints, snapshots and ``model.pt``): the trainable tensors."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def save_model(state: dict[str, Any], name: str, variant: AdaptationVariant, params: Params, inputs: dict[str, str],
               path: Path) -> None:
    """``model.pt``: the variant, its adaptation tensors and the pretrained files they sit on (eat/schema.py)."""
    config = {k: getattr(params, k).model_dump() for k in ("a2et", "adaptation", "latent", "signal")}
    save_torch_atomic({"name": name, "variant": variant.model_dump(), "steps": state["step"],
                       "adaptation": state["adaptation"], "pretrained": inputs, "config": config}, path)


def load_emotional_model(path: Path | str, params: Params, basis: ExpressionBasis,
                         snapshot: dict[str, torch.Tensor] | None = None) -> EmotionalModel:
    """The adapted model of a ``model.pt`` (optionally with a Fig. 5 snapshot's tensors instead), eval mode."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    variant = AdaptationVariant.model_validate(saved["variant"])
    model = build_model(params, variant, basis, saved["pretrained"]["latent_model"])
    model.load_pretrained(torch.load(saved["pretrained"]["a2et_model"], map_location="cpu", weights_only=True)["a2et"])
    model.load_state_dict(snapshot if snapshot is not None else saved["adaptation"], strict=False)
    return model.eval().requires_grad_(False)
