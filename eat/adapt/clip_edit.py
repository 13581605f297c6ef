"""Zero-shot text editing (Sec. 3.2, "zero-shot editing"): fine-tune the emotion mapper and the EAMs of an adapted
model so that its talking heads match a text description, with CLIP in place of the reconstruction loss.

    L = λ_clip (1 − cos(CLIP_img(frames), CLIP_txt(text))) + λ_lat ‖K − K̂‖² + λ_sync L_sync

Official weights (docs/paper_notes.md §4): clip 100, latent 10, sync 10. Only the
mapper and the EAMs (3D EAM, feature EAM, the audio encoder's AdaIN layers) move; EDN, prompts' consumers and every
pretrained tensor stay frozen, CLIP included.

CLIP is OpenAI's ViT-B/32 (the model the official code edits with), built with open_clip's architecture and
loaded only from the local file of the weights registry (``eat.weights`` entry ``clip_vit_b32``); nothing is
downloaded. Without the file, :func:`clip_status` says where to put it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from eat.a2et.data import A2ETClip, RunBatch, WindowBatch, WindowSampler, run_batch, window_batch
from eat.a2et.objective import latent_terms
from eat.adapt.model import EmotionalModel, emotion_index
from eat.config import EMOTIONS
from eat.models.adaptation import adaptation_group
from eat.sync.wav2lip_expert import face_window, mel_window, sync_loss
from eat.weights import REGISTRY, WeightsError, resolve, shown_path, weights_dir

CLIP_WEIGHTS = "clip_vit_b32"          # eat.weights registry entry
CLIP_ARCHITECTURE = "ViT-B-32"         # open_clip model config of that file
# OpenAI CLIP's input normalisation (open_clip.constants.OPENAI_DATASET_MEAN / _STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Entries of TorchScript archives that are no weights: OpenAI's stored ints, and the causal mask, which open_clip
# rebuilds (a non-persistent buffer that a scripted model's state dict still lists).
_NOT_WEIGHTS = ("input_resolution", "context_length", "vocab_size", "attn_mask")


class ClipEditConfig(BaseModel):
    """Zero-shot text editing: the description, the emotion head edited, steps and the official loss weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(default="a happy face", min_length=1)
    emotion: str = "neutral"               # the mapper head whose codes are edited (EMOTIONS)
    steps: int = Field(default=100, ge=1)
    batch_size: int = Field(default=1, ge=1)        # runs of sync_expert.frames consecutive frames
    lr: float = Field(default=2e-4, gt=0)           # Adam, betas (0.5, 0.999) as every adaptation
    clip_weight: float = Field(default=100.0, ge=0)
    latent_weight: float = Field(default=10.0, ge=0)
    sync_weight: float = Field(default=10.0, ge=0)
    grad_clip: float = Field(default=0.05, gt=0)
    architecture: str = CLIP_ARCHITECTURE

    @field_validator("emotion")
    @classmethod
    def _known_emotion(cls, value: str) -> str:
        if value not in EMOTIONS:
            raise ValueError(f"unknown emotion {value!r}: expected one of {', '.join(EMOTIONS)}")
        return value


class ClipWeightsError(ValueError):
    """A CLIP weights file that does not fit the configured architecture."""


# ---------------------------------------------------------------------------------------------------------------
# CLIP: open_clip's architecture, local weights only


def clip_architecture(name: str) -> dict[str, Any]:
    """open_clip's model config ``name`` (embed_dim, vision_cfg, text_cfg), read from the files in its wheel."""
    import open_clip  # local: about 2 s to import (after torch), and only CLIP editing needs it

    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(f"unknown CLIP architecture {name!r}: open_clip has no model config of that name")
    return cfg


def build_clip(architecture: str | dict[str, Any]) -> nn.Module:
    """A randomly initialised ``open_clip.model.CLIP`` of ``architecture`` (a config name or dict), QuickGELU as
    OpenAI's models; eval mode. ``pretrained`` is never asked for, so nothing is fetched."""
    from open_clip.model import CLIP  # local: see clip_architecture

    cfg = clip_architecture(architecture) if isinstance(architecture, str) else dict(architecture)
    cfg.setdefault("quick_gelu", True)
    return CLIP(**cfg).eval()


def read_clip_state(path: Path | str) -> dict[str, torch.Tensor]:
    """The tensors of a CLIP checkpoint: OpenAI's TorchScript archive or a ``torch.save``d state dict (optionally
    under ``"state_dict"``, optionally with DataParallel ``module.`` prefixes)."""
    path = Path(path)
    if zipfile.is_zipfile(path) and any(n.endswith("/constants.pkl") for n in zipfile.ZipFile(path).namelist()):
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
    if not isinstance(state, dict):
        raise ClipWeightsError(f"{path}: not a CLIP checkpoint (holds a {type(state).__name__}, not tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in _NOT_WEIGHTS}


def _mismatch(model: nn.Module, state: dict[str, torch.Tensor]) -> str:
    """What keeps ``state`` from loading strictly into ``model`` ("" when it fits)."""
    mine = model.state_dict()
    missing = [k for k in mine if k not in state]
    unexpected = [k for k in state if k not in mine]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in mine.items()
              if k in state and state[k].shape != v.shape]
    parts = [f"{len(x)} {what} (e.g. {', '.join(x[:3])})"
             for x, what in ((missing, "missing keys"), (unexpected, "unexpected keys"), (shapes, "shape mismatches"))
             if x]
    return "; ".join(parts)


class ClipScorer(nn.Module):
    """A frozen CLIP and its tokenizer: frames → unit image embeddings, texts → unit text embeddings (D = embed_dim).

    Frames (N, 3, S, S) in [0, 1] are resized to CLIP's input size (bilinear, antialiased, differentiable) and
    normalised with OpenAI's mean and std, as CLIP's own preprocessing does for a square face crop.
    """

    def __init__(self, model: nn.Module, tokenizer: Callable[[list[str]], torch.Tensor] | None = None):
        super().__init__()
        from open_clip.tokenizer import SimpleTokenizer  # local: see clip_architecture

        self.model = model.eval().requires_grad_(False)
        # open_clip's BPE vocabulary ships in its wheel: tokenising works offline.
        self.tokenizer = tokenizer or SimpleTokenizer(context_length=model.context_length)
        size = model.visual.image_size
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> ClipScorer:
        return super().train(False)          # frozen: no dropout, whatever the caller's mode

    def embed_images(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [0, 1] → (N, D) unit-norm; gradients flow to ``frames``."""
        x = F.interpolate(frames, size=self.image_size, mode="bilinear", align_corners=False, antialias=True)
        return F.normalize(self.model.encode_image((x - self.mean) / self.std), dim=-1)

    @torch.no_grad()
    def embed_text(self, texts: str | list[str]) -> torch.Tensor:
        """(T, D) unit-norm embeddings of ``texts``."""
        tokens = self.tokenizer([texts] if isinstance(texts, str) else list(texts)).to(self.mean.device)
        return F.normalize(self.model.encode_text(tokens), dim=-1)


def load_clip(path: Path | str, architecture: str | dict[str, Any] = CLIP_ARCHITECTURE,
              device: torch.device | str = "cpu") -> ClipScorer:
    """The CLIP of ``architecture`` with the weights of ``path`` (any layout :func:`read_clip_state` reads).

    Raises :class:`ClipWeightsError` naming the file and what does not fit when the file holds another
    architecture."""
    state = read_clip_state(path)
    with torch.device("meta"):               # shapes only: a foreign file is refused before 150 M weights exist
        problem = _mismatch(build_clip(architecture), state)
    if problem:
        name = architecture if isinstance(architecture, str) else "(custom config)"
        raise ClipWeightsError(f"{path}: not weights of CLIP {name}: {problem}. Put OpenAI's ViT-B/32 file "
                               f"({REGISTRY[CLIP_WEIGHTS].filename}) there, or configure its architecture")
    model = build_clip(architecture)
    model.load_state_dict(state)            # OpenAI's fp16 tensors are cast to the fp32 parameters
    return ClipScorer(model).to(device)


def clip_status(folder: Path | str | None = None) -> dict[str, Any]:
    """Whether the registry's CLIP weights are usable: {"available": True, "path", "architecture"} or
    {"available": False, "message": "needs CLIP weights at <path> (…)"} for the reports."""
    entry = REGISTRY[CLIP_WEIGHTS]
    path = (Path(folder) if folder else weights_dir()) / entry.filename
    try:
        resolved = resolve(CLIP_WEIGHTS, folder)
    except WeightsError as err:
        shown = shown_path(path)
        if path.is_file():                   # present but wrong: say why
            return {"available": False, "path": shown, "message": f"needs CLIP weights at {shown} ({err})"}
        return {"available": False, "path": shown,
                "message": f"needs CLIP weights at {shown} (OpenAI CLIP ViT-B/32 from {entry.source}; "
                           "or set EAT_WEIGHTS_DIR)"}
    return {"available": True, "path": shown_path(resolved), "architecture": CLIP_ARCHITECTURE}


def load_registered_clip(folder: Path | str | None = None, device: torch.device | str = "cpu") -> ClipScorer:
    """The registry's CLIP ViT-B/32, checked; :class:`~eat.weights.WeightsError` with the fix when missing."""
    return load_clip(resolve(CLIP_WEIGHTS, folder), CLIP_ARCHITECTURE, device)


# ---------------------------------------------------------------------------------------------------------------
# The editing objective


@dataclass
class EditBatch:
    """B runs of L consecutive frames: A2ET windows (B·L, …), the runs' sources, frames and mel rows
    (:class:`~eat.a2et.data.RunBatch`), latent codes z (B, z_dim) and emotion indices (B,)."""

    windows: WindowBatch
    runs: RunBatch
    z: torch.Tensor
    emotion: torch.Tensor

    @property
    def length(self) -> int:
        return len(self.windows) // len(self.runs.source)


def edit_batch(clips: list[A2ETClip], sampler: WindowSampler, step: int, batch_size: int, emotion: str, z_dim: int,
               half: int, seed: int, device: torch.device | str = "cpu") -> EditBatch:
    """Batch ``step`` of the edit: runs drawn by ``sampler``, z ~ N(0, I) seeded by (seed, step), one emotion."""
    run_clip, run_start = sampler(step, batch_size)
    clip_index, frame = sampler.expand(run_clip, run_start)
    z = torch.randn(batch_size, z_dim, generator=torch.Generator().manual_seed(seed * 7919 + step))
    return EditBatch(
        windows=window_batch(clips, clip_index, frame, half, device),
        runs=run_batch(clips, run_clip, run_start, sampler.length, device),
        z=z.to(device), emotion=torch.full((batch_size,), emotion_index(emotion), dtype=torch.long, device=device))


def generate(model: EmotionalModel, batch: EditBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(K̂ (B·L, k, 3), frames (B·L, 3, S, S)) of the batch under the mapper's codes for (z, emotion)."""
    e0, prompts = model.codes(batch.z, batch.emotion)
    e0, prompts = e0.repeat_interleave(batch.length, 0), prompts.repeat_interleave(batch.length, 0)
    _, kp = model.keypoints(batch.windows, e0, prompts)
    return kp, model.render(batch.runs.source, batch.runs.kp_source, kp, e0, batch.length)


def clip_edit_losses(model: EmotionalModel, scorer: ClipScorer, text: torch.Tensor, batch: EditBatch,
                     cfg: ClipEditConfig, expert: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Weighted terms {"clip", "latent", "sync"} (a weight of 0 drops its term; sync also needs ``expert``).

    ``text``: the description's unit CLIP embedding (1, D) from :meth:`ClipScorer.embed_text`.
    clip = λ_clip · mean over frames of (1 − cos(CLIP image embedding, text)); latent = λ_lat ‖K − K̂‖² against
    the clip's keypoints (keeps head motion and lips on track); sync = λ_sync · (−log cos(v, s)) of the expert.
    """
    kp, frames = generate(model, batch)
    terms: dict[str, torch.Tensor] = {}
    if cfg.clip_weight > 0:
        cosine = (scorer.embed_images(frames) * text).sum(dim=-1)
        terms["clip"] = cfg.clip_weight * (1.0 - cosine).mean()
    terms.update(latent_terms(cfg.latent_weight, kp, batch.windows.keypoints))
    if cfg.sync_weight > 0 and expert is not None:
        faces = face_window(frames.view(len(batch.runs.source), batch.length, *frames.shape[1:]), expert.cfg.face_size)
        terms["sync"] = cfg.sync_weight * sync_loss(expert.embed_audio(mel_window(batch.runs.mel)),
                                                    expert.embed_face(faces))
    return terms


@torch.no_grad()
def text_similarity(model: EmotionalModel, scorer: ClipScorer, text: torch.Tensor, batch: EditBatch) -> float:
    """Mean CLIP cosine between the batch's generated frames and the text embedding (model in eval mode)."""
    was_training = model.training
    model.eval()
    _, frames = generate(model, batch)
    model.train(was_training)
    return float((scorer.embed_images(frames) * text).sum(dim=-1).mean())


def editable_parameters(model: EmotionalModel) -> dict[str, nn.Parameter]:
    """Freeze everything but the mapper and (if the variant has them) the EAMs; return those by full name."""
    keep = {"mapper"} | ({"eam"} if model.variant.eam else set())
    for p in model.parameters():
        p.requires_grad_(False)
    out: dict[str, nn.Parameter] = {}
    for key, module in model.modules_by_key().items():
        for name, p in module.named_parameters():
            if adaptation_group(key, name) in keep:
                p.requires_grad_(True)
                out[f"{key}.{name}"] = p
    return out


@dataclass
class EditResult:
    """The edited tensors (full names, for ``load_state_dict(strict=False)``), the per-step log and the CLIP
    cosine of the first batch before and after editing."""

    state: dict[str, torch.Tensor]
    log: list[dict[str, float]]
    similarity_before: float
    similarity_after: float


def edit(model: EmotionalModel, scorer: ClipScorer, cfg: ClipEditConfig, batches: Callable[[int], EditBatch],
         expert: nn.Module | None = None, betas: tuple[float, float] = (0.5, 0.999)) -> EditResult:
    """``cfg.steps`` Adam steps over the mapper and EAMs only towards ``cfg.text``; ``batches(step)`` gives batch
    ``step`` (e.g. ``functools.partial(edit_batch, clips, sampler, …)`` with the step left open)."""
    params = editable_parameters(model)
    opt = torch.optim.Adam(params.values(), lr=cfg.lr, betas=betas)
    text = scorer.embed_text(cfg.text)
    probe = batches(0)
    before = text_similarity(model, scorer, text, probe)
    model.train()
    log: list[dict[str, float]] = []
    for step in range(cfg.steps):
        terms = clip_edit_losses(model, scorer, text, batches(step), cfg, expert)
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.grad_clip)
        opt.step()
        log.append({"step": step, **{k: float(v.detach()) for k, v in terms.items()}, "total": float(loss.detach())})
    after = text_similarity(model, scorer, text, probe)
    model.eval()
    return EditResult(state={k: p.detach().clone() for k, p in params.items()}, log=log,
                      similarity_before=before, similarity_after=after)
