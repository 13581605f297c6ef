"""Emotional adaptation (Sec. 3.2 of the paper): emotion mapper with deep prompts, EDN, and the adaptation split.

    z ∈ R^16, emotion y ──EmotionMapper──▶ e0 (B, d), prompts e1…e6 (B, 6, d)
        e0      → EAMs: generator ``ea3d``, A2ET ``fea`` and the audio encoder's AdaIN layers
        e1…e6   → deep prompts of the A2ET layers (eat/models/a2et.py)
    face map, e0, e1…e6 ──EDN──▶ ΔE (B, k, 3);   E'_i = E_i + ΔE

Only the adaptation parameters (mapper, EDN, every EAM) are trained in the adaptation stage; the rest is frozen
(the official ``prompt_st_dp_eam3d.py``). Module keys are the official checkpoint's: ``generator``,
``kp_detector``, ``audio2kptransformer`` (A2ET), ``sidetuning`` (EDN), ``emotionprompt`` (mapper).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from eat.config import EMOTIONS, A2ETConfig, AdaptationConfig, Params
from eat.models.a2et import A2ET, PositionalEncoding, PromptTransformer, down_res_stack, pooled


class MappingNetwork(nn.Module):
    """StarGAN v2's mapping network: shared MLP, then one unshared MLP head per emotion.

    ``shared``: Linear(z → h) + (shared_layers − 1) × Linear(h → h), ReLU after each; ``unshared[y]``:
    (unshared_layers − 1) × [Linear(h → h), ReLU] + Linear(h → out).
    """

    def __init__(self, cfg: AdaptationConfig, out_features: int, domains: int):
        super().__init__()
        h = cfg.mapper_hidden
        shared: list[nn.Module] = []
        for i in range(cfg.mapper_shared_layers):
            shared += [nn.Linear(cfg.z_dim if i == 0 else h, h), nn.ReLU()]
        self.shared = nn.Sequential(*shared)

        def head() -> nn.Sequential:
            hidden = [m for _ in range(cfg.mapper_unshared_layers - 1) for m in (nn.Linear(h, h), nn.ReLU())]
            return nn.Sequential(*hidden, nn.Linear(h, out_features))

        self.unshared = nn.ModuleList(head() for _ in range(domains))

    def forward(self, z: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim), domain (B,) long → (B, out_features), the head of each row's domain."""
        h = self.shared(z)
        out = torch.stack([head(h) for head in self.unshared], dim=1)          # (B, domains, out)
        return out[torch.arange(z.shape[0], device=z.device), domain]


class EmotionMapper(nn.Module):
    """Emotion mapper (Sec. 3.2): latent code z (B, z_dim) and emotion label (B,) → e0 (B, d), prompts (B, P, d).

    Labels index :data:`eat.config.EMOTIONS` (official order ang, con, dis, fea, hap, neu, sad, sur); P =
    ``adaptation.prompt_tokens``. The official ``EmotionDeepPrompt`` (``emotionprompt``), 10,777,600 parameters.
    """

    def __init__(self, cfg: AdaptationConfig, d_model: int, emotions: int = len(EMOTIONS)):
        super().__init__()
        self.tokens, self.d_model = 1 + cfg.prompt_tokens, d_model
        self.mappingnet = MappingNetwork(cfg, self.tokens * d_model, emotions)

    def forward(self, z: torch.Tensor, emotion: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.mappingnet(z, emotion).view(z.shape[0], self.tokens, self.d_model)
        return s[:, 0], s[:, 1:]


class EDN(nn.Module):
    """Emotional deformation network (Sec. 3.2): face map (B or 1, F, s, s), e0 (B, d), prompts (B, P, d) → ΔE (B, k, 3)

    Tokens [face token, e0, e1…e_P] (+ sinusoidal positions) through an encoder with the A2ET encoder's
    architecture; the emotion tokens' outputs are averaged (the face token is dropped) and ``emokp`` maps them to
    ΔE. The face token is a down-residual CNN of the A2ET face map (after its feature EAM). The official
    ``EmotionalDeformationTransformer`` (``sidetuning``), 2,386,077 parameters.
    """

    def __init__(self, cfg: A2ETConfig, num_kp: int):
        super().__init__()
        self.pos_enc = PositionalEncoding(cfg.d_model)
        self.transformer = PromptTransformer(cfg, encoder_only=True)
        self.emokp = nn.Linear(cfg.d_model, 3 * num_kp)
        self.decodefeature_extract = down_res_stack(cfg.face_channels, cfg.decoder_channels)
        self.face_channels = cfg.face_channels

    def forward(self, face: torch.Tensor, e0: torch.Tensor, prompts: torch.Tensor) -> torch.Tensor:
        b = e0.shape[0]
        face_token = pooled(self.decodefeature_extract, face).unsqueeze(1).expand(b, 1, -1)
        tokens = torch.cat([face_token, e0.unsqueeze(1), prompts], dim=1)
        out = self.transformer.encoder(tokens + self.pos_enc(tokens.shape[1]))
        return self.emokp(out[:, 1:].mean(dim=1)).view(b, -1, 3)

    @torch.no_grad()
    def init_from_a2et(self, a2et: A2ET) -> list[str]:
        """Copy the A2ET encoder and face-token CNN into EDN (Table 8's "from A2ET" init; official
        ``init_sidetuning_weight``); returns the names copied.

        The A2ET's first CNN block sees [audio map, face map]; EDN's sees the face map only, so its first
        norm and conv take the face half of the A2ET's input channels. Tensors whose shapes differ (a first
        block narrower than its input at small profiles) keep their initialisation.
        """
        theirs, copied = a2et.state_dict(), []
        first = "decodefeature_extract.0.conv_block_0.layers."
        for name, mine in self.state_dict().items():
            if name not in theirs or name.startswith("emokp."):
                continue
            value = theirs[name]
            if name.startswith(first) and value.dim() >= 1 and value.shape != mine.shape:
                value = value[:, self.face_channels:] if value.dim() == 4 else value[self.face_channels:]
            if value.shape == mine.shape:
                mine.copy_(value)
                copied.append(name)
        return copied


class ExpressionNetworks(nn.Module):
    """A2ET, EDN and the emotion mapper under the official checkpoint keys, built from ``params.yaml``."""

    def __init__(self, a2et: A2ET, edn: EDN, mapper: EmotionMapper):
        super().__init__()
        self.audio2kptransformer = a2et
        self.sidetuning = edn
        self.emotionprompt = mapper

    @classmethod
    def from_params(cls, params: Params) -> ExpressionNetworks:
        a2et = A2ET(params.a2et, params.latent, params.signal, params.adaptation.prompts)
        return cls(a2et, EDN(params.a2et, params.latent.num_kp), EmotionMapper(params.adaptation, params.a2et.d_model))


# ---------------------------------------------------------------------------------------------------------------
# Which parameters adapt (stage 2) and the Fig. 6 parameter shares

MAPPER, EDN_KEY, A2ET_KEY, GENERATOR = "emotionprompt", "sidetuning", "audio2kptransformer", "generator"


def is_eam_parameter(module: str, name: str) -> bool:
    """EAM parameters: the generator's 3D EAM, A2ET's feature EAM and the audio encoder's decoder AdaIN layers."""
    if module == GENERATOR:
        return name.startswith("ea3d.")
    if module == A2ET_KEY:
        return name.startswith("fea.") or (name.startswith("audioencoder.decode.") and ".norm" in name)
    return False


def adaptation_group(module: str, name: str) -> str | None:
    """"mapper", "edn" or "eam" for an adaptation parameter of ``module`` (an official key), else None (frozen)."""
    if module == MAPPER:
        return "mapper"
    if module == EDN_KEY:
        return "edn"
    return "eam" if is_eam_parameter(module, name) else None


def adaptation_parameters(modules: Mapping[str, nn.Module]) -> dict[str, list[nn.Parameter]]:
    """Adaptation parameters by group {"mapper", "edn", "eam"}; ``modules`` maps official keys to networks."""
    groups: dict[str, list[nn.Parameter]] = {"mapper": [], "edn": [], "eam": []}
    for key, module in modules.items():
        for name, p in module.named_parameters():
            group = adaptation_group(key, name)
            if group is not None:
                groups[group].append(p)
    return groups


def freeze_for_adaptation(modules: Mapping[str, nn.Module]) -> list[nn.Parameter]:
    """``requires_grad`` on the adaptation parameters only; returns them. BatchNorm statistics stay frozen too:
    call :func:`freeze_batchnorm` after every ``.train()``."""
    for key, module in modules.items():
        for name, p in module.named_parameters():
            p.requires_grad_(adaptation_group(key, name) is not None)
    return [p for group in adaptation_parameters(modules).values() for p in group]


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm layer of ``module`` in eval mode (running statistics neither used from the batch nor
    updated), as the official adaptation does."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


@dataclass(frozen=True)
class ParameterShares:
    """Parameter counts of Fig. 6: the whole network and its adaptation parts."""

    total: int
    mapper: int
    edn: int
    eam: int

    @property
    def adaptation(self) -> int:
        return self.mapper + self.edn + self.eam

    def percent(self, part: str) -> float:
        """Share of ``part`` ("mapper", "edn", "eam" or "adaptation") in the total, in percent."""
        return 100.0 * getattr(self, part) / self.total


def parameter_shares(modules: Mapping[str, nn.Module]) -> ParameterShares:
    """Fig. 6 of the paper; ``modules``: generator, kp_detector, A2ET, EDN and mapper under their official keys."""
    total = sum(p.numel() for m in modules.values() for p in m.parameters())
    groups = adaptation_parameters(modules)
    mapper, edn, eam = (sum(p.numel() for p in groups[g]) for g in ("mapper", "edn", "eam"))
    return ParameterShares(total=total, mapper=mapper, edn=edn, eam=eam)
