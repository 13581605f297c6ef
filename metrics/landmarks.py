"""M-LMD and F-LMD (Tables 1, 3): landmark distance between generated and ground-truth faces.

Official protocol (evaluation_eat ``test_lmd.py``; docs/paper_notes.md §7): per frame pair, the 68 landmarks of each
aligned 128² crop (:mod:`metrics.align`, the same detector on both sides); the mouth set (iBUG 48–67,
20 points) and the face set (all 68) are each mean-centred on their own centroid, without scaling;
the distance is the mean over points of the Euclidean distance, averaged over the frames where both
faces were found, then over videos. Units: pixels of the crop (``pixels_at`` rescales, e.g. to 256²).

The official script also reports landmark *velocity* distances (LVD) and adds the mouth value into
the face LVD sum (a bug); LVD is not in the paper's tables and is not computed here. Its LMD sums
are what we compute.
"""

from __future__ import annotations

import numpy as np

from metrics.align import ALIGN_SIZE

MOUTH = np.arange(48, 68)
FACE = np.arange(68)


def centred(points: np.ndarray) -> np.ndarray:
    """(..., N, 2) points minus their centroid over N."""
    return points - points.mean(axis=-2, keepdims=True)


def frame_distances(fake: np.ndarray, real: np.ndarray, subset: np.ndarray = FACE) -> np.ndarray:
    """(T, 68, 2) landmarks of both videos → (T,) mean Euclidean distance over ``subset`` after mean-centring it."""
    diff = centred(fake[:, subset].astype(np.float64)) - centred(real[:, subset].astype(np.float64))
    return np.linalg.norm(diff, axis=-1).mean(axis=-1)


def video_lmd(fake: np.ndarray, real: np.ndarray, valid: np.ndarray | None = None,
              size: int = ALIGN_SIZE, pixels_at: int = ALIGN_SIZE) -> dict[str, float]:
    """M-LMD, F-LMD (pixels at ``pixels_at``² for landmarks given at ``size``²) and the frame count of one video.

    ``valid``: (T,) frames where both faces were found (default: frames without NaN on either side).
    No valid frame gives NaN distances and ``lmd_frames`` 0.
    """
    if valid is None:
        valid = ~(np.isnan(fake).any(axis=(1, 2)) | np.isnan(real).any(axis=(1, 2)))
    keep = np.flatnonzero(valid)
    if not len(keep):
        return {"M-LMD": float("nan"), "F-LMD": float("nan"), "lmd_frames": 0}
    scale = pixels_at / size
    return {"M-LMD": float(frame_distances(fake[keep], real[keep], MOUTH).mean() * scale),
            "F-LMD": float(frame_distances(fake[keep], real[keep], FACE).mean() * scale),
            "lmd_frames": len(keep)}
