"""The embedders :func:`metrics.sync.sync_score` is given (:class:`~metrics.sync.AVClip` → (video (N, D),
audio (N, D)) windows), and the choice between them; metrics/ only reads the curve, the networks run here.

- :func:`syncnet_embedder` — SyncNet v2 with syncnet_python's released weights (registry ``syncnet_v2``):
  the paper's metric, column ``Sync``. Faces are the aligned frames resized to 224² (evaluation_eat
  crops them again with PC-AVS's aligner first).
- :func:`expert_embedder` — the Wav2Lip-style expert this pipeline trains (eat/sync/train.py), column
  ``Sync_expert``: same curve, another network, another scale; never reported as ``Sync``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from eat.sync import train
from eat.sync.syncnet_v2 import FACE_SIZE, load_syncnet_v2, syncnet_v2_embeddings
from eat.sync.wav2lip_expert import FACE_BOX, box_pixels
from eat.weights import WeightsError
from metrics.sync import AVClip, SyncEmbedder


def syncnet_embedder(model) -> SyncEmbedder:
    """SyncNet v2 (eat/sync/syncnet_v2.py) windows; needs ``samples`` at 16 kHz."""

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
    try:
        return "Sync", syncnet_embedder(load_syncnet_v2(weights_folder))
    except WeightsError:
        if expert_path is None:
            raise
    return "Sync_expert", expert_embedder(train.load_sync_expert(expert_path))
