"""Sync confidence and AV offset (Tables 1, 3, 6) the syncnet_python way, from the embeddings of a given embedder.

Official protocol (evaluation_eat ``test_sync_conf.py`` → syncnet_python ``SyncNetInstance.evaluate``;
docs/paper_notes.md §7): per video, per-window video and audio embeddings, the mean distance curve over audio
offsets of ±15 frames, offset = argmin, confidence = median − min of the curve; the table reports
the mean confidence over videos. Facts from syncnet_python (``SyncNetInstance.py``: ``calc_pdist`` + ``evaluate``),
what :func:`evaluate_offset` computes:

- For video window ``i`` and each candidate ``j = 0 … 2·vshift``, the distance
  ``d[i, j] = ‖v_i − a_{i + j − vshift} + 1e-6‖₂`` (``torch.nn.functional.pairwise_distance``'s
  epsilon); audio outside the clip is a zero vector (the audio features are zero-padded by
  ``vshift`` at both ends).
- ``mean_dist[j]`` = mean over ``i`` of ``d[i, j]``; ``min_dist`` = its minimum (LSE-D), at ``j*``.
- AV offset = ``vshift − j*``: video window ``i`` matches audio window ``i − offset`` best (positive:
  the audio leads the video).
- Confidence = ``median(mean_dist) − min_dist`` (LSE-C).
- Per frame: ``frame_dist[i] = d[i, j*]``; ``frame_conf = median(mean_dist) − frame_dist``, median-filtered
  with a 9-tap window (``scipy.signal.medfilt``).

:func:`sync_score` scores one :class:`AVClip` with an embedder (:data:`SyncEmbedder`, clip → (video (N, D),
audio (N, D)) windows) and narrows the search on short clips. Pure functions of arrays: the embedders, which
load and run the networks, are eat/sync/embedders.py's — SyncNet v2 with syncnet_python's released weights
(the paper's metric, column ``Sync``) or the Wav2Lip-style expert this pipeline trains (column ``Sync_expert``:
same curve, another network, another scale; never reported as ``Sync``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import medfilt

PAIRWISE_EPS = 1e-6      # torch.nn.functional.pairwise_distance adds it to the difference
DEFAULT_VSHIFT = 15
FRAME_CONF_KERNEL = 9


@dataclass(frozen=True)
class SyncOffset:
    """Result of the offset search over ``−vshift … +vshift`` for one clip of ``N`` windows."""

    offset: int              # frames; video window i matches audio window i − offset
    confidence: float        # median(mean_dist) − min_dist (LSE-C)
    min_dist: float          # min over offsets of the mean distance (LSE-D)
    mean_dist: np.ndarray    # (2·vshift + 1,) float64 mean distance, index j ↔ audio displaced by j − vshift
    frame_dist: np.ndarray   # (N,) float64 per-window distance at the best offset
    frame_conf: np.ndarray   # (N,) float64 median(mean_dist) − frame_dist, 9-tap median-filtered


def offset_distances(video: np.ndarray, audio: np.ndarray, vshift: int = DEFAULT_VSHIFT) -> np.ndarray:
    """(N, 2·vshift + 1) distances ``d[i, j] = ‖video[i] − audio[i + j − vshift] + 1e-6‖``, zero audio outside.

    ``video``, ``audio``: (N, D) per-window embeddings of one clip (any array-like, e.g. CPU tensors).
    """
    v = np.asarray(video, dtype=np.float64)
    a = np.asarray(audio, dtype=np.float64)
    if v.ndim != 2 or v.shape != a.shape:
        raise ValueError(f"video and audio embeddings must both be (N, D), got {v.shape} and {a.shape}")
    n = len(v)
    padded = np.concatenate([np.zeros((vshift, a.shape[1])), a, np.zeros((vshift, a.shape[1]))])
    idx = np.arange(n)[:, None] + np.arange(2 * vshift + 1)[None, :]         # (N, 2v+1) rows of padded
    return np.linalg.norm(v[:, None, :] - padded[idx] + PAIRWISE_EPS, axis=-1)


def evaluate_offset(video: np.ndarray, audio: np.ndarray, vshift: int = DEFAULT_VSHIFT) -> SyncOffset:
    """AV offset, confidence, minimum distance and per-frame outputs for (N, D) video and audio embeddings."""
    dists = offset_distances(video, audio, vshift)
    mean_dist = dists.mean(axis=0)
    best = int(np.argmin(mean_dist))
    median = float(np.median(mean_dist))       # 2·vshift + 1 values: the middle one, as torch.median
    frame_dist = dists[:, best]
    with warnings.catch_warnings():            # clips shorter than the kernel are zero-padded, as upstream
        warnings.filterwarnings("ignore", "kernel_size exceeds volume extent")
        frame_conf = medfilt(median - frame_dist, kernel_size=FRAME_CONF_KERNEL)
    return SyncOffset(offset=vshift - best, confidence=median - float(mean_dist[best]),
                      min_dist=float(mean_dist[best]), mean_dist=mean_dist, frame_dist=frame_dist,
                      frame_conf=frame_conf)


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
