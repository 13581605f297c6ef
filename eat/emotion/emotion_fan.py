"""Emotion-FAN (Meng, Peng, Wang & Qiao, "Frame Attention Networks for Facial Expression Recognition in
Videos", ICIP 2019): the emotion classifier behind Acc_emo (docs/paper_notes.md §7; Tables 1, 3, 7).

Facts from its public code (Open-Debin/Emotion-FAN ``Code/Model.py``, ``Demo_AFEW_Attention.py``,
``fan_afew_traintest.py``) and EAT's evaluation (yuangan/evaluation_eat, ``_acc_test.py``):

- Frame features: ResNet-18 (torchvision's block structure and parameter names: 7×7 stem, 3×3
  max-pool, four stages of two BasicBlocks at widths 64, 128, 256, 512, global average pool) on
  224² RGB crops in [0, 1] (``ToTensor`` only, no mean/std): f_i (512).
- Self-attention: α_i = σ(W_α · dropout₀.₅(f_i)); clip feature f' = Σ α_i f_i / Σ α_i.
- Relation-attention: β_i = σ(W_β · dropout₀.₅([f_i; f'])); output
  v = Σ α_i β_i [f_i; f'] / Σ α_i β_i (1024), dropout 0.6, linear classifier.
- Training: 3 frames per clip, cross-entropy, SGD (see :class:`~eat.config.EmotionClassifierConfig`).
  Evaluation: all frames of a video at once.
- EAT's classifier has 8 outputs in Emotion-FAN's MEAD order (:data:`FAN_MEAD_ORDER`: happy, angry,
  disgusted, fear, sad, neutral, surprised, contempt); here the classifier is in EAT's label order
  (:data:`eat.config.EMOTIONS`), and :func:`load_emotion_fan` permutes the checkpoint's rows.

Note. Emotion-FAN's *evaluation* path (``AT_level='second_level'``) weights the numerator by α only,
Σ α_i [f_i; f'] / Σ α_i β_i, which reduces to [f'; f'] · Σα / Σαβ, so β there only rescales the clip
feature and never re-weights frames; its training path uses the paper's α·β weights. We use the
paper's formula in both (a checkpoint scored this way can differ slightly from evaluation_eat's number).

Sizes are config values (``input_size``, ``base_width``): the default profile is a narrow ResNet-18
on 64² crops, trained from scratch; ``configs/paper.yaml`` is Emotion-FAN's 224² / width 64.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, conv1x1

from eat.config import EMOTIONS, EmotionClassifierConfig
from eat.weights import REGISTRY, WeightsError, resolve

FAN_MEAD_ORDER: tuple[str, ...] = ("happy", "angry", "disgusted", "fear", "sad", "neutral", "surprised", "contempt")
"""Class order of EAT's Emotion-FAN checkpoint (evaluation_eat's ``cate2label['MEAD']``)."""

OFFICIAL_WIDTH = 64


FACE_BOX: tuple[float, float, float, float] = (0.2, 0.3, 0.8, 0.9)
"""The face inside an aligned crop, (x0, y0, x1, y1) as fractions of its side: Emotion-FAN classifies face
crops, not our loose 2.1×-face-width crop. By the crop rule (docs/paper_notes.md §1) the 68 landmarks span
x ≈ 0.26…0.74, y ≈ 0.38…0.86 of the side (measured on the embedded data); the margin keeps raised brows and the chin."""


def box_pixels(h: int, w: int, box: tuple[float, ...]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixel bounds of ``box`` (fractions of the frame) in an H × W frame."""
    return round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)


def face_crops(frames: torch.Tensor, size: int, box: tuple[float, ...] = FACE_BOX) -> torch.Tensor:
    """(..., 3, H, W) aligned frames in [0, 1] → (..., 3, size, size): the ``box`` region, resized (bilinear,
    antialiased). The input :class:`EmotionFAN` expects; ``box`` = (x0, y0, x1, y1) fractions of the frame."""
    *lead, c, h, w = frames.shape
    x0, y0, x1, y1 = box_pixels(h, w, box)
    x = frames.reshape(-1, c, h, w)[:, :, y0:y1, x0:x1]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.reshape(*lead, c, size, size)


class ResNet18(nn.Module):
    """Frames (N, 3, S, S) in [0, 1] → pooled features (N, 8w): torchvision's ResNet-18 trunk at width ``w``.

    Stages of two :class:`torchvision.models.resnet.BasicBlock` at widths w, 2w, 4w, 8w (strides 1, 2,
    2, 2) after a 7×7 stride-2 stem and a 3×3 stride-2 max-pool; parameter names are torchvision's
    (``conv1``, ``bn1``, ``layer1.0.conv1`` …, ``layerK.0.downsample.{0,1}``) without ``fc``.
    """

    def __init__(self, width: int = OFFICIAL_WIDTH):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths = [width * m for m in (1, 2, 4, 8)]
        cin = width
        for k, (cout, stride) in enumerate(zip(widths, (1, 2, 2, 2), strict=True), start=1):
            down = None
            if stride != 1 or cin != cout:
                down = nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))
            self.add_module(f"layer{k}", nn.Sequential(BasicBlock(cin, cout, stride, down), BasicBlock(cout, cout)))
            cin = cout
        self.out_dim = cin
        for m in self.modules():        # torchvision's initialisation (Emotion-FAN's normal(0, √(2/n)) is the same)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


@dataclass(frozen=True)
class FrameAttention:
    """Emotion-FAN outputs for a batch of B clips of T frames."""

    logits: torch.Tensor         # (B, 8) in eat.config.EMOTIONS order
    alpha: torch.Tensor          # (B, T) self-attention weights α_i / Σ α (0 on masked frames; rows sum to 1)
    weights: torch.Tensor        # (B, T) final frame weights α_i β_i / Σ α β (0 on masked frames; rows sum to 1)
    features: torch.Tensor       # (B, T, D) frame features f_i, D = 8 · base_width


class EmotionFAN(nn.Module):
    """Face crops (B, T, 3, S, S) RGB in [0, 1] → emotion logits (B, 8) with self- and relation-attention.

    Make the crops from aligned frames with :func:`face_crops`. Crops of another size are resized
    (bilinear, antialiased) to ``cfg.input_size``. An optional
    ``mask`` (B, T) bool marks real frames, so clips of different lengths can share a batch.
    """

    def __init__(self, cfg: EmotionClassifierConfig, num_classes: int = len(EMOTIONS)):
        super().__init__()
        self.cfg = cfg
        self.backbone = ResNet18(cfg.base_width)
        d = self.backbone.out_dim
        self.attention_dropout = nn.Dropout(cfg.attention_dropout)
        self.alpha = nn.Linear(d, 1)
        self.beta = nn.Linear(2 * d, 1)
        self.classifier_dropout = nn.Dropout(cfg.classifier_dropout)
        self.classifier = nn.Linear(2 * d, num_classes)

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) → (B, T, D) ResNet-18 features of every frame."""
        b, t = frames.shape[:2]
        x = frames.reshape(b * t, *frames.shape[2:])
        s = self.cfg.input_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return self.backbone(x).reshape(b, t, -1)

    def frame_attention(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> FrameAttention:
        """Logits and the α, α·β frame weights of Emotion-FAN's self + relation attention."""
        f = self.frame_features(frames)                                              # (B, T, D)
        m = torch.ones(f.shape[:2], dtype=f.dtype, device=f.device) if mask is None else mask.to(f.dtype)
        if bool((m.sum(1) == 0).any()):
            raise ValueError("every clip needs at least one unmasked frame")
        alpha = torch.sigmoid(self.alpha(self.attention_dropout(f))).squeeze(-1) * m    # (B, T)
        alpha = alpha / alpha.sum(1, keepdim=True)
        clip = (alpha.unsqueeze(-1) * f).sum(1)                                     # f' (B, D)
        cat = torch.cat([f, clip.unsqueeze(1).expand_as(f)], dim=-1)               # [f_i; f'] (B, T, 2D)
        beta = torch.sigmoid(self.beta(self.attention_dropout(cat))).squeeze(-1)   # (B, T)
        weights = alpha * beta
        weights = weights / weights.sum(1, keepdim=True)
        pooled = (weights.unsqueeze(-1) * cat).sum(1)                              # (B, 2D)
        logits = self.classifier(self.classifier_dropout(pooled))
        return FrameAttention(logits=logits, alpha=alpha, weights=weights, features=f)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, 3, S, S) → (B, 8) logits in eat.config.EMOTIONS order."""
        return self.frame_attention(frames, mask).logits


def _convert_checkpoint(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], bool]:
    """Emotion-FAN / torchvision keys → :class:`EmotionFAN` keys; also whether the attention heads were present.

    ``module.`` (DataParallel) prefixes are dropped; ``fc.*`` (an ImageNet / FER+ head) and ``pred_fc1.*``
    (the self-attention-only classifier) are ignored; ``pred_fc2`` rows are permuted from
    :data:`FAN_MEAD_ORDER` to :data:`eat.config.EMOTIONS`.
    """
    out: dict[str, torch.Tensor] = {}
    heads = {"alpha.0.weight": "alpha.weight", "alpha.0.bias": "alpha.bias",
             "beta.0.weight": "beta.weight", "beta.0.bias": "beta.bias"}
    perm = torch.tensor([FAN_MEAD_ORDER.index(e) for e in EMOTIONS])
    for raw_key, value in state.items():
        key = raw_key.removeprefix("module.")
        if key.startswith(("fc.", "pred_fc1.")):
            continue
        if key in heads:
            out[heads[key]] = value
        elif key.startswith("pred_fc2."):
            out["classifier." + key.removeprefix("pred_fc2.")] = value[perm]
        else:
            out["backbone." + key] = value
    return out, "classifier.weight" in out


def load_emotion_fan(cfg: EmotionClassifierConfig, folder: Path | str | None = None) -> tuple[EmotionFAN, dict]:
    """An :class:`EmotionFAN` for ``cfg.weights`` and a label for reports.

    'pretrained' needs the registry file ``emotion_fan`` (else :class:`~eat.weights.WeightsError` naming
    it) and ``base_width`` 64; a file holding only a ResNet-18 backbone (Emotion-FAN's
    ``Resnet18_FER+_pytorch.pth.tar`` / ``…MS1M…`` renamed to the registry name) loads the backbone and
    leaves the attention heads and classifier fresh. 'scratch' is a fresh model; 'auto' takes the file
    when present and compatible, else scratch. Returns ``(model, {"weights": "emotion_fan" | "backbone"
    | "scratch", "pretrained": bool, "note": str})``.
    """
    model = EmotionFAN(cfg)
    if cfg.weights == "scratch":
        return model, {"weights": "scratch", "pretrained": False, "note": "emotion_classifier.weights: scratch"}
    try:
        path = resolve("emotion_fan", folder)
        if cfg.base_width != OFFICIAL_WIDTH:
            raise WeightsError(f"weights 'emotion_fan': {path} is a width-{OFFICIAL_WIDTH} ResNet-18, but "
                               f"emotion_classifier.base_width is {cfg.base_width}; set it to {OFFICIAL_WIDTH}")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:        # not a torch file, or one needing arbitrary unpickling
            raise WeightsError(f"weights 'emotion_fan': {path} cannot be read as a torch checkpoint: {exc}") from None
        state, full = _convert_checkpoint(checkpoint.get("state_dict", checkpoint))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(k.startswith("backbone.") for k in missing):
            raise WeightsError(f"weights 'emotion_fan': {path} is not an Emotion-FAN / ResNet-18 checkpoint "
                               f"({REGISTRY['emotion_fan'].source}); unexpected {unexpected[:3]}, "
                               f"missing {missing[:3]}")
    except WeightsError as err:
        if cfg.weights == "pretrained":
            raise
        return model, {"weights": "scratch", "pretrained": False, "note": f"trained from scratch ({err})"}
    kind = "emotion_fan" if full else "backbone"
    return model, {"weights": kind, "pretrained": True,
                   "note": f"Emotion-FAN {'checkpoint' if full else 'ResNet-18 backbone'} from {path}"}
