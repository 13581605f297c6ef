"""Per-clip metric rows and their aggregates.

Rows (one per generated video, parquet): ``uid`` plus the columns each metric module returns, e.g.
``face_frames`` (frame pairs with a face on both sides), ``PSNR`` / ``SSIM`` (means over those frames),
``M-LMD`` / ``F-LMD``, ``Sync`` (or ``Sync_expert``) with ``*_offset`` and ``*_dist``, ``emotion`` /
``emotion_pred``. Aggregates follow evaluation_eat: PSNR and SSIM over all frames (clips weighted by
``face_frames``), LMD and Sync means over videos, Acc_emo over videos, FID over the pooled features of
5 frames per video.

Pure functions of arrays and tables: mapping over clips in parallel and writing the rows (parquet) and the
aggregates (flat metrics JSON) are eat/scoring.py's (metrics/ imports nothing of eat).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from metrics.align import AlignedVideo, DetectorFactory, align_pair
from metrics.emotion import accuracy
from metrics.fid import FeatureSpace, feature_distance, sample_indices
from metrics.image import frame_scores
from metrics.landmarks import video_lmd
from metrics.sync import SyncScore


@dataclass(frozen=True)
class ImageResult:
    """One video pair: its row, and the aligned crops (k, 128, 128, 3) uint8 of its FID frames."""

    row: dict
    fid_fake: np.ndarray
    fid_real: np.ndarray


def image_metrics(uid: str, fake: np.ndarray, real: np.ndarray, new_detector: DetectorFactory,
                  reference_face: np.ndarray, real_aligned: AlignedVideo | None = None) -> ImageResult:
    """PSNR, SSIM, M-LMD, F-LMD and the FID frames of a generated and a ground-truth video (T, H, W, 3) uint8 RGB,
    aligned onto ``reference_face`` (:func:`metrics.align.align_pair`); ``real_aligned``: the ground truth already
    aligned (:func:`metrics.align.align_video`), to skip its detection."""
    a_fake, a_real = align_pair(fake, real, new_detector, reference_face, real_aligned=real_aligned)
    valid = a_fake.found
    psnr, ssim = frame_scores(a_real.frames, a_fake.frames, valid)
    n = int(valid.sum())
    pick = np.flatnonzero(valid)[sample_indices(n)]
    row = {"uid": uid, "frames": len(valid), "face_frames": n,
           "PSNR": float(psnr.mean()) if n else math.nan, "SSIM": float(ssim.mean()) if n else math.nan,
           **video_lmd(a_fake.landmarks, a_real.landmarks, valid)}
    return ImageResult(row, a_fake.frames[pick], a_real.frames[pick])


def sync_row(uid: str, column: str, score: SyncScore) -> dict:
    """The row of one clip's sync score under ``column`` (``Sync`` or ``Sync_expert``: the embedder's column,
    eat.sync.embedders.load_embedder)."""
    return {"uid": uid, column: score.confidence, f"{column}_offset": score.offset, f"{column}_dist": score.min_dist}


def fid_metric(space: FeatureSpace, results: Sequence[ImageResult]) -> dict[str, float]:
    """``{space.key: distance}`` over the pooled FID frames of every video pair; NaN (written as null) when fewer
    than two frame pairs had a face on both sides."""
    fake = np.concatenate([r.fid_fake for r in results]) if results else np.zeros((0,))
    real = np.concatenate([r.fid_real for r in results]) if results else np.zeros((0,))
    if len(fake) < 2:
        return {space.key: math.nan, f"{space.key}_frames": len(fake)}
    return {space.key: feature_distance(space(fake), space(real)), f"{space.key}_frames": len(fake)}


def _weighted(rows: pd.DataFrame, column: str, weight: str) -> float:
    ok = rows[rows[weight] > 0]
    return float((ok[column] * ok[weight]).sum() / ok[weight].sum()) if len(ok) else math.nan


def aggregate(rows: pd.DataFrame, emotions: Sequence[str]) -> dict[str, float]:
    """Table numbers from per-clip rows (whichever metric columns are present); ``emotion`` / ``emotion_pred``
    name one of ``emotions``, the labels of Acc_emo (:func:`metrics.emotion.accuracy`)."""
    out: dict[str, float] = {"clips": len(rows)}
    if "face_frames" in rows:
        out |= {"PSNR": _weighted(rows, "PSNR", "face_frames"), "SSIM": _weighted(rows, "SSIM", "face_frames"),
                "face_frames": int(rows.face_frames.sum())}
    for col in ("M-LMD", "F-LMD"):
        if col in rows:
            out[col] = float(rows[col].mean())          # NaN rows (no face pair) are skipped, as evaluation_eat
    for col in ("Sync", "Sync_expert"):
        if col in rows:
            out |= {col: float(rows[col].mean()), f"{col}_dist": float(rows[f"{col}_dist"].mean()),
                    f"{col}_abs_offset": float(rows[f"{col}_offset"].abs().mean())}
    if "emotion_pred" in rows:
        truth = rows.emotion.map(emotions.index).to_numpy()
        out |= accuracy(truth, rows.emotion_pred.map(emotions.index).to_numpy(), emotions)
    return out
