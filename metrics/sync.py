"""Sync confidence and AV offset (Tables 1, 3, 6) the syncnet_python way, with a pluggable embedder.

Official protocol (evaluation_eat ``test_sync_conf.py`` → syncnet_python ``SyncNetInstance.evaluate``;
docs/paper_notes.md §7): per video, per-window video and audio embeddings, the mean distance curve over audio
offsets of ±15 frames, offset = argmin, confidence = median − min of the curve; the table reports
the mean confidence over videos. The curve and its reading are :func:`eat.sync.offset.evaluate_offset`;
this module only chooses the embedder and narrows the search on short clips.

Embedders (:data:`SyncEmbedder`, :class:`AVClip` → (video (N, D), audio (N, D)) windows):

- :func:`syncnet_embedder` — SyncNet v2 with syncnet_python's released weights (registry ``syncnet_v2``):
  the paper's metric, column ``Sync``. Faces are the aligned frames resized to 224² (evaluation_eat
  crops them again with PC-AVS's aligner first).
- :func:`expert_embedder` — the Wav2Lip-style expert this pipeline trains (eat/sync/train.py), column
  ``Sync_expert``: same curve, another network, another scale; never reported as ``Sync``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from eat.sync.offset import DEFAULT_VSHIFT, evaluate_offset


@dataclass(frozen=True)
class AVClip:
    """One video with its audio: frames (T, H, W, 3) uint8 RGB at 25 fps; mel (T, n_mels) float32, one row per
    frame (eat/schema.py), for the expert; samples (N,) 16 kHz mono, for SyncNet v2."""

    uid: str
    frames: np.ndarray
    mel: np.ndarray | None = None
    samples: np.ndarray | None = None
    rate: int = 16000


SyncEmbedder = Callable[[AVClip], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class SyncScore:
    offset: int              # frames; positive: the audio leads the video
    confidence: float        # median − min of the mean distance curve (LSE-C)
    min_dist: float          # LSE-D
    windows: int
    vshift: int              # the search range used (±15, narrowed on short clips)


def sync_score(clip: AVClip, embed: SyncEmbedder, vshift: int = DEFAULT_VSHIFT) -> SyncScore:
    """Offset and confidence of one clip; the range is narrowed to N − 1 windows so every offset overlaps."""
    video, audio = embed(clip)
    n = len(video)
    if n < 2:
        raise ValueError(f"clip {clip.uid}: {len(clip.frames)} frames give {n} sync windows; need at least 2")
    shift = min(vshift, n - 1)
    res = evaluate_offset(video, audio, shift)
    return SyncScore(res.offset, res.confidence, res.min_dist, n, shift)


def syncnet_embedder(model) -> SyncEmbedder:
    """SyncNet v2 (eat/sync/syncnet_v2.py) windows; needs ``samples`` at 16 kHz."""
    import torch

    from eat.sync.syncnet_v2 import FACE_SIZE, syncnet_v2_embeddings

    def embed(clip: AVClip) -> tuple[np.ndarray, np.ndarray]:
        if clip.samples is None:
            raise ValueError(f"clip {clip.uid}: SyncNet v2 needs the audio samples")
        faces = np.stack([cv2.resize(f, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_LINEAR) for f in clip.frames])
        frames = torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255
        video, audio = syncnet_v2_embeddings(model, frames, clip.samples, clip.rate)
        return video.numpy(), audio.numpy()

    return embed


def expert_embedder(model) -> SyncEmbedder:
    """The pipeline-trained expert's windows (eat.sync.train.expert_embedder) on aligned frames; needs ``mel``.

    The expert sees the face box of the aligned crop (eat.sync.wav2lip_expert.FACE_BOX) at its ``face_size``,
    cut here as training cuts it (eat.sync.train.read_face_crops)."""
    from eat.sync import train
    from eat.sync.wav2lip_expert import FACE_BOX, box_pixels

    inner, size = train.expert_embedder(model), model.cfg.face_size

    def embed(clip: AVClip) -> tuple[np.ndarray, np.ndarray]:
        if clip.mel is None:
            raise ValueError(f"clip {clip.uid}: the sync expert needs the mel frames")
        n = min(len(clip.frames), len(clip.mel))
        x0, y0, x1, y1 = box_pixels(clip.frames.shape[1], clip.frames.shape[2], FACE_BOX)
        faces = np.stack([cv2.resize(f[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
                          for f in clip.frames[:n]])
        return inner(train.SyncClip(clip.uid, "", faces, clip.mel[:n]))

    return embed


def load_embedder(expert_path=None, weights_folder=None) -> tuple[str, SyncEmbedder]:
    """(column, embedder): SyncNet v2 (``Sync``) when its weights resolve, else the expert at ``expert_path``
    (``Sync_expert``); neither raises the registry's error naming the SyncNet file."""
    from eat.sync.syncnet_v2 import load_syncnet_v2
    from eat.weights import WeightsError

    try:
        return "Sync", syncnet_embedder(load_syncnet_v2(weights_folder))
    except WeightsError:
        if expert_path is None:
            raise
    from eat.sync.train import load_sync_expert

    return "Sync_expert", expert_embedder(load_sync_expert(expert_path))
