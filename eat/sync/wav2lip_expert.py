"""Lip-sync expert for L_sync (Sec. 3.3): a SyncNet in Wav2Lip's "SyncNet_color" design.

Facts from Wav2Lip (Prajwal et al., ACM MM 2020; ``models/syncnet.py``, ``models/conv.py``,
``color_syncnet_train.py``, ``hparams.py``), which EAT's official expert follows (docs/paper_notes.md §4):

- Unit: Conv2d → BatchNorm2d (→ + input when residual) → ReLU.
- Face encoder: T = 5 consecutive RGB frames, lower half of a 96² face crop, stacked on channels:
  (B, 15, 48, 96). A 7×7 stem at width 32, then stages at widths 64, 128, 256, 512 (a strided conv and
  2–3 residual 3×3 convs each; the first downsamples width only, stride (1, 2), kernel 5), a last
  strided conv, a convolution that covers the remaining 3×3 map and a 1×1 conv → (B, 512, 1, 1).
- Audio encoder: mel window (B, 1, 80, 16) (80 mels × 16 frames of its 80 fps mel = 0.2 s). Stages of
  widths 32, 64, 128, 256 with strides 1, (3, 1), 3, (3, 2), two residual convs each, then a conv
  covering the remaining 3×3 map to 512 and a 1×1 conv → (B, 512, 1, 1).
- Both embeddings are L2-normalised; their cosine similarity (in [0, 1]: the last ReLU makes both
  non-negative) is the probability of "in sync", trained with binary cross-entropy against
  positives (matching window) and negatives (another window of the same clip), 50 % each, Adam
  lr 1e-4, batch 64.

Adaptations here (config-driven, :class:`~eat.config.SyncExpertConfig`):

- Our mel has one frame per video frame (25 fps, docs/paper_notes.md §1), so the 0.2 s window is
  ``mel_frames`` = 5 frames, not 16. Strides on the mel axis stay Wav2Lip's; the time axis keeps
  Wav2Lip's strides too, and the convolution that Wav2Lip sizes 3×3 for the remaining map is sized
  here to whatever map remains (3×1 for 80 × 5). With ``mel_frames`` = 16, 80 mels, ``face_size``
  = 96 and ``base_channels`` = 32 every layer has Wav2Lip's shape, and parameter names follow its
  ``face_encoder.N.conv_block.{0,1}`` / ``audio_encoder.N…`` layout, so a ``lipsync_expert.pth``
  state dict loads.
- Widths scale with ``base_channels`` (×1, 2, 4, 8, 16); the embedding is 16 × base_channels.
- Negatives are the same clip's audio displaced by ``negative_min_shift`` … ``negative_max_shift``
  frames (either sign) rather than any other window of the clip, so the expert is trained on the
  offsets that the ±15-frame sync search (metrics/sync.py) scores.
- No dropout (Wav2Lip's published expert has none).

- The expert sees the face box of the aligned crop (:data:`FACE_BOX`), as Wav2Lip sees a face-detector
  box; the lower half of our whole 2.1×-face-width crop would be mostly neck and background, with a
  mouth only a few pixels tall.

EAT's L_sync = −log(cos(v, s)) (:func:`sync_loss`) uses the trained expert frozen, on the lower half
of the face box of generated frames (:func:`face_window`) and the driving mel (:func:`mel_window`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eat.config import SyncExpertConfig

_EPS = 1e-7


class ConvBlock(nn.Module):
    """Conv2d → BatchNorm2d → (+ input if ``residual``) → ReLU: Wav2Lip's unit, its parameter names."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                 padding: int = 0, residual: bool = False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else v


def _out_size(size: tuple[int, int], kernel, stride, padding: int) -> tuple[int, int]:
    (kh, kw), (sh, sw) = _pair(kernel), _pair(stride)
    return (size[0] + 2 * padding - kh) // sh + 1, (size[1] + 2 * padding - kw) // sw + 1


def _encoder(cin: int, plan: list[tuple], size: tuple[int, int], width: int, what: str) -> nn.Sequential:
    """Build ``plan`` = [(cout, kernel, stride, padding, residual), …], then close to (B, width, 1, 1).

    The closing conv has the remaining map as its kernel, no padding (Wav2Lip's 3×3 at its input
    sizes), followed by a 1×1 conv. Raises ValueError naming ``what`` if the input is too small for
    the strides.
    """
    layers, channels = [], cin
    for cout, kernel, stride, padding, residual in plan:
        layers.append(ConvBlock(channels, cout, kernel, stride, padding, residual))
        size, channels = _out_size(size, kernel, stride, padding), cout
        if min(size) < 1:
            raise ValueError(f"{what}: input too small for the encoder's strides (a feature map became {size})")
    layers.append(ConvBlock(channels, width, size, 1, 0))
    layers.append(ConvBlock(width, width, 1, 1, 0))
    return nn.Sequential(*layers)


def _face_plan(c: list[int]) -> list[tuple]:
    """Wav2Lip's face encoder up to the map-covering conv; ``c`` = five stage widths."""
    return [(c[0], 7, 1, 3, False),
            (c[1], 5, (1, 2), 1, False), (c[1], 3, 1, 1, True), (c[1], 3, 1, 1, True),
            (c[2], 3, 2, 1, False), (c[2], 3, 1, 1, True), (c[2], 3, 1, 1, True), (c[2], 3, 1, 1, True),
            (c[3], 3, 2, 1, False), (c[3], 3, 1, 1, True), (c[3], 3, 1, 1, True),
            (c[4], 3, 2, 1, False), (c[4], 3, 1, 1, True), (c[4], 3, 1, 1, True),
            (c[4], 3, 2, 1, False)]


def _audio_plan(c: list[int]) -> list[tuple]:
    """Wav2Lip's audio encoder up to the map-covering conv (which widens to ``c[4]``)."""
    return [(c[0], 3, 1, 1, False), (c[0], 3, 1, 1, True), (c[0], 3, 1, 1, True),
            (c[1], 3, (3, 1), 1, False), (c[1], 3, 1, 1, True), (c[1], 3, 1, 1, True),
            (c[2], 3, 3, 1, False), (c[2], 3, 1, 1, True), (c[2], 3, 1, 1, True),
            (c[3], 3, (3, 2), 1, False), (c[3], 3, 1, 1, True), (c[3], 3, 1, 1, True)]


class SyncExpert(nn.Module):
    """Face window (B, 3T, S/2, S) and mel window (B, 1, n_mels, M) → unit-norm embeddings (B, D) each.

    ``T`` = ``cfg.frames``, ``S`` = ``cfg.face_size``, ``M`` = ``cfg.mel_frames``,
    ``D`` = 16 × ``cfg.base_channels``. Build the inputs with :func:`face_window` and :func:`mel_window`.
    """

    def __init__(self, cfg: SyncExpertConfig, n_mels: int = 80):
        super().__init__()
        self.cfg, self.n_mels = cfg, n_mels
        c = [cfg.base_channels * m for m in (1, 2, 4, 8, 16)]
        self.embed_dim = c[4]
        self.face_encoder = _encoder(3 * cfg.frames, _face_plan(c), (cfg.face_size // 2, cfg.face_size), c[4],
                                     f"face window {cfg.face_size // 2}×{cfg.face_size}")
        self.audio_encoder = _encoder(1, _audio_plan(c), (n_mels, cfg.mel_frames), c[4],
                                      f"mel window {n_mels}×{cfg.mel_frames}")

    def embed_face(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 3T, S/2, S) lower-half face stack in [0, 1] → (B, D) L2-normalised, non-negative.

        ``cfg.face_norm`` = standardise first gives each channel zero mean and unit std over its pixels
        (:func:`standardise_channels`), so a face's palette and brightness cannot carry the embedding.
        """
        if self.cfg.face_norm == "standardise":
            faces = standardise_channels(faces)
        return F.normalize(self.face_encoder(faces).flatten(1), dim=1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, n_mels, M) mel window → (B, D) L2-normalised, non-negative."""
        return F.normalize(self.audio_encoder(mel).flatten(1), dim=1)

    def forward(self, mel: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio embedding, face embedding), each (B, D): Wav2Lip's argument and return order."""
        return self.embed_audio(mel), self.embed_face(faces)


def standardise_channels(x: torch.Tensor, min_std: float = 1e-3) -> torch.Tensor:
    """(B, C, H, W) → each (sample, channel) map minus its mean, over its std (floored at ``min_std``).

    The lip-sync expert's face input on the embedded data: with raw pixels its face embeddings bunch by
    identity colour and InfoNCE sits on its plateau for a seed- and thread-count-dependent number of steps
    (docs/probes/sync_expert/README.md, sixteenth and seventeenth sessions).
    """
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) / x.std(dim=(2, 3), keepdim=True).clamp_min(min_std)


FACE_BOX: tuple[float, float, float, float] = (0.25, 0.375, 0.75, 0.875)
"""The face inside an aligned crop, (x0, y0, x1, y1) as fractions of its side: Wav2Lip's expert sees a
face-detector box, not our loose crop. Follows from the crop rule (docs/paper_notes.md §1: side 2.1 × face width,
centre y = (3·min_y + max_y)/4): the 68 landmarks span x ≈ 0.26…0.74, y ≈ 0.38…0.86 of the side
(measured on the embedded data), so the lower half of this box, y 0.625…0.875, holds mouth and chin."""

FULL_FRAME: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)


def box_pixels(h: int, w: int, box: tuple[float, ...]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixel bounds of ``box`` (fractions of the frame) in an H × W frame."""
    return round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)


def face_crop(frames: torch.Tensor, face_size: int, box: tuple[float, ...] = FACE_BOX) -> torch.Tensor:
    """(..., 3, H, W) aligned frames in [0, 1] → (..., 3, S, S): the ``box`` region resized to ``face_size``.

    ``box`` = (x0, y0, x1, y1) in fractions of the frame; pass :data:`FULL_FRAME` for frames that are
    already face crops. Bilinear with antialiasing, so a crop of a 256² frame and of its 64² copy agree.
    """
    *lead, c, h, w = frames.shape
    x0, y0, x1, y1 = box_pixels(h, w, box)
    x = frames.reshape(-1, c, h, w)[:, :, y0:y1, x0:x1]
    if x.shape[-2:] != (face_size, face_size):
        x = F.interpolate(x, size=(face_size, face_size), mode="bilinear", align_corners=False, antialias=True)
    return x.reshape(*lead, c, face_size, face_size)


def face_window(frames: torch.Tensor, face_size: int, box: tuple[float, ...] = FACE_BOX) -> torch.Tensor:
    """(B, T, 3, H, W) aligned frames in [0, 1] → (B, 3T, S/2, S): face box resized to S², lower half,
    frames on channels (:func:`face_crop`; ``box`` = :data:`FULL_FRAME` for frames already cropped).

    Channel ``3t + k`` is colour ``k`` (RGB) of frame ``t``, Wav2Lip's frame-major stacking.
    """
    b, t = frames.shape[:2]
    x = face_crop(frames, face_size, box)[..., face_size // 2:, :]
    return x.reshape(b, t * 3, face_size - face_size // 2, face_size)


def mel_window(mel: torch.Tensor) -> torch.Tensor:
    """(B, M, n_mels) mel frames (the ``mel`` array layout of eat/schema.py) → (B, 1, n_mels, M)."""
    return mel.transpose(1, 2).unsqueeze(1)


def sync_similarity(audio_emb: torch.Tensor, face_emb: torch.Tensor) -> torch.Tensor:
    """Cosine similarity (B,) of unit-norm embeddings (B, D); in [0, 1] for the expert's non-negative ones."""
    return (audio_emb * face_emb).sum(dim=1)


def sync_bce_loss(audio_emb: torch.Tensor, face_emb: torch.Tensor, in_sync: torch.Tensor) -> torch.Tensor:
    """Wav2Lip's expert loss: BCE of the cosine similarity (B,) against ``in_sync`` (B,) ∈ {0, 1}; mean."""
    p = sync_similarity(audio_emb, face_emb).clamp(_EPS, 1 - _EPS)
    return F.binary_cross_entropy(p, in_sync.to(p.dtype))


def sync_infonce_loss(audio_emb: torch.Tensor, face_emb: torch.Tensor, scale: float) -> torch.Tensor:
    """Symmetric InfoNCE over the batch: pair ``i`` (audio ``i``, face ``i``) is in sync, every other pairing
    of the batch is not; cross-entropy of ``scale`` × the (B, B) cosine matrix, both directions, mean.

    The deviation from Wav2Lip's BCE (``objective: infonce``): with our budget the BCE stays at its
    0.69 plateau; the batch of :func:`~eat.sync.train.make_contrastive_batch` puts windows displaced by
    1 … L − 1 frames of the same clip among the candidates, the multi-way matching of SyncNet's
    successor (Chung et al., "Perfect match", ICASSP 2019). Embeddings stay ReLU'd and unit-norm, so
    cos ∈ [0, 1] and EAT's :func:`sync_loss` is unchanged.
    """
    logits = scale * audio_emb @ face_emb.T
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def sync_loss(audio_emb: torch.Tensor, face_emb: torch.Tensor) -> torch.Tensor:
    """EAT's L_sync = −log(cos(v, s)) (Sec. 3.3), averaged over the batch; embeddings (B, D) unit-norm."""
    return -torch.log(sync_similarity(audio_emb, face_emb).clamp_min(_EPS)).mean()


@dataclass(frozen=True)
class SyncPair:
    """One training pair: video frames ``[start, start + T)``, audio frames ``[start + shift, … + M)``."""

    start: int
    shift: int       # 0 for an in-sync pair
    in_sync: bool


def sample_pair(n_frames: int, cfg: SyncExpertConfig, rng: np.random.Generator) -> SyncPair:
    """Draw an in-sync (probability 1/2, as Wav2Lip) or displaced pair from a clip of ``n_frames`` frames.

    Negatives displace the audio window by ``s`` frames, ``negative_min_shift ≤ |s| ≤ negative_max_shift``,
    either sign, with both windows inside the clip. With one mel frame per video frame the mel window of
    a pair is ``mel[start + shift : start + shift + mel_frames]``. Raises ValueError when the clip is too
    short for any displaced window (``frames + negative_min_shift`` frames are needed).
    """
    span = max(cfg.frames, cfg.mel_frames)
    if n_frames < span + cfg.negative_min_shift:
        raise ValueError(f"a clip of {n_frames} frames is too short for sync pairs: need at least "
                         f"{span + cfg.negative_min_shift} (window {span} + negative_min_shift)")
    last = n_frames - span                     # last valid window start
    if rng.random() < 0.5:
        return SyncPair(int(rng.integers(0, last + 1)), 0, True)
    while True:                                 # a valid (start, shift) exists, so this terminates quickly
        start = int(rng.integers(0, last + 1))
        magnitude = int(rng.integers(cfg.negative_min_shift, cfg.negative_max_shift + 1))
        shift = magnitude if rng.random() < 0.5 else -magnitude
        if 0 <= start + shift <= last:
            return SyncPair(start, shift, False)
