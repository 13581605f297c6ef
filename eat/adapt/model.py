"""The emotion-controllable model of Sec. 3.2: pretrained A2ET and RePos-Net plus the adaptation modules.

Built from the pretrained A2ET (``train_a2et@full``) and the enhanced latent model for one
:class:`~eat.config.AdaptationVariant`: the emotion mapper (always: it makes e0 and the prompts), deep /
shallow / no prompts in A2ET, EDN (initialised from the A2ET encoder or randomly) and the EAMs (3D EAM on
RePos-Net's appearance volume, feature EAM on the face map, the audio encoder's AdaIN layers). Everything
pretrained is frozen; :meth:`EmotionalModel.trainable` lists what adapts (a test checks frozen tensors stay
put). A disabled component is absent from the forward pass: no EDN → ΔE = 0; no EAM → e0 reaches no EAM.

Forward for B windows with emotion codes (e0, prompts) from :meth:`EmotionalModel.codes`:
face = A2ET.face_feature(logits, e0) → PÊ = A2ET(…, prompts, e0) → E' = E(PÊ) + EDN(face, e0, prompts)
→ K = R K_c + T + E' → RePos-Net(source, K_s, K, e0).
"""

from __future__ import annotations

import torch
from torch import nn

from eat.config import EMOTIONS, AdaptationVariant, Params
from eat.latent.pca import ExpressionBasis
from eat.models.adaptation import (
    A2ET_KEY,
    EDN_KEY,
    GENERATOR,
    MAPPER,
    ExpressionNetworks,
    adaptation_group,
    freeze_batchnorm,
)
from eat.models.keypoints import compose_keypoints


class EmotionalModel(nn.Module):
    """Mapper + A2ET (prompted) + EDN + RePos-Net with EAMs, one variant; official submodule keys."""

    def __init__(self, params: Params, variant: AdaptationVariant, basis: ExpressionBasis, generator: nn.Module):
        super().__init__()
        nets = ExpressionNetworks.from_params(params.model_copy(update={
            "adaptation": params.adaptation.model_copy(update={"prompts": variant.prompts})}))
        self.audio2kptransformer = nets.audio2kptransformer
        self.sidetuning = nets.sidetuning
        self.emotionprompt = nets.emotionprompt
        self.generator = generator
        self.basis = basis
        self.variant = variant
        self.z_dim = params.adaptation.z_dim

    @property
    def a2et(self) -> nn.Module:
        return self.audio2kptransformer

    def modules_by_key(self) -> dict[str, nn.Module]:
        return {GENERATOR: self.generator, A2ET_KEY: self.audio2kptransformer, EDN_KEY: self.sidetuning,
                MAPPER: self.emotionprompt}

    def load_pretrained(self, a2et_state: dict[str, torch.Tensor]) -> None:
        """Pretrained A2ET weights (its prompt-free layout), then EDN from its encoder when the variant says so."""
        missing, unexpected = self.a2et.load_state_dict(a2et_state, strict=False)
        if unexpected or any(not adaptation_group(A2ET_KEY, k) and not k.startswith("fea.") for k in missing):
            raise ValueError(f"pretrained A2ET does not fit: missing {missing}, unexpected {unexpected}")
        if self.variant.edn and self.variant.edn_init == "a2et":
            self.sidetuning.init_from_a2et(self.a2et)

    def trainable(self) -> list[nn.Parameter]:
        """Freeze everything but this variant's adaptation parameters; return those (mapper, EDN, EAMs)."""
        keep = {"mapper"} | ({"edn"} if self.variant.edn else set()) | ({"eam"} if self.variant.eam else set())
        params = []
        for key, module in self.modules_by_key().items():
            for name, p in module.named_parameters():
                on = adaptation_group(key, name) in keep
                p.requires_grad_(on)
                if on:
                    params.append(p)
        return params

    def train(self, mode: bool = True) -> EmotionalModel:
        """Train mode for dropout of the expression networks; BatchNorm statistics stay frozen (as the official
        code) and RePos-Net stays in eval mode, whose spectral-norm power iterations would otherwise move its
        frozen weights."""
        super().train(mode)
        freeze_batchnorm(self)
        self.generator.eval()
        return self

    def codes(self, z: torch.Tensor, emotion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(e0 (B, d), prompts (B, P, d)) for latent codes z (B, z_dim) and EMOTIONS indices (B,)."""
        return self.emotionprompt(z, emotion)

    def keypoints(self, batch, e0: torch.Tensor, prompts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(PÊ (B, n), K̂ (B, k, 3)) of a :class:`~eat.a2et.data.WindowBatch` under per-window codes."""
        eam = e0 if self.variant.eam else None
        face = self.a2et.face_feature(batch.source_logits, eam)
        pe = self.a2et(batch.speech, batch.pose, batch.pose_image, batch.mel, face,
                       prompts if self.variant.prompts != "none" else None, eam)
        expression = self.basis.decode(pe)
        if self.variant.edn:
            expression = expression + self.sidetuning(face, e0, prompts)
        return pe, compose_keypoints(batch.canonical, batch.rotation, batch.translation, expression)

    def render(self, source: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor,
               e0: torch.Tensor | None, per_source: int) -> torch.Tensor:
        """Frames (B·L, 3, S, S) from B sources, each driving L frames; e0 (B·L, d) drives the 3D EAM."""
        volume = self.generator.appearance(source).repeat_interleave(per_source, dim=0)
        kp_source = kp_source.repeat_interleave(per_source, dim=0)
        emotion = e0 if self.variant.eam else None
        return self.generator.render(volume, kp_source, kp_driving, emotion)["prediction"]


def emotion_index(name: str) -> int:
    if name not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}: expected one of {', '.join(EMOTIONS)}")
    return EMOTIONS.index(name)
