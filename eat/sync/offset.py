"""AV offset and sync confidence from per-window embeddings: syncnet_python's ``calc_pdist`` + ``evaluate``.

Facts from syncnet_python (``SyncNetInstance.py``), the paper's Sync metric (docs/paper_notes.md §7: ±15 frames,
confidence = median − min distance):

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

Pure functions of arrays: no model here (embeddings come from eat/sync/syncnet_v2.py or the expert).
"""

from __future__ import annotations

import warnings
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
