"""Measure preprocessing against the synthetic ground truth: landmarks, head pose, audio/video alignment.

Ground-truth frames are at the raw clip's frame rate; normalised frame i (time i / fps)
is compared with the raw frame nearest in time. Landmark errors are in aligned-crop
pixels at ``crop_align.size`` (the paper's 256²), after mapping the ground truth
through the same crop box. The alignment check cross-correlates the mouth opening
measured from the detected landmarks with the ground-truth viseme aperture: the best
lag, in frames, must be 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MOUTH, FACE = slice(48, 68), slice(0, 68)


def _best_lag(a: np.ndarray, b: np.ndarray, max_lag: int = 5) -> int:
    """Lag (frames) maximising the correlation of ``a`` shifted against ``b``; positive: ``a`` is late."""
    a = (a - a.mean()) / (a.std() + 1e-9)
    b = (b - b.mean()) / (b.std() + 1e-9)
    scores = {lag: float(np.mean(a[max(lag, 0):len(a) + min(lag, 0)] * b[max(-lag, 0):len(b) + min(-lag, 0)]))
              for lag in range(-max_lag, max_lag + 1)}
    return max(scores, key=scores.get)


def evaluate_clip(row: dict, gt: pd.DataFrame, gt_fps: float, size: int) -> dict:
    with np.load(row["aligned_arrays"]) as arrays:
        crop_lm, box = arrays["landmarks"], arrays["box"]
    pose = np.load(row["pose"])
    t = np.arange(row["n_frames"]) / row["fps"]
    src = np.clip(np.round(t * gt_fps).astype(int), 0, len(gt) - 1)
    gt_lm = np.stack(gt.landmarks.to_numpy()).reshape(len(gt), 68, 2)[src]
    gt_crop = (gt_lm - box[:, None, :2]) * (size / box[:, None, 2:3])
    err = np.linalg.norm(crop_lm - gt_crop, axis=2)
    gt_pose = gt[["yaw", "pitch", "roll"]].to_numpy()[src]
    mouth_open = np.linalg.norm(crop_lm[:, 66] - crop_lm[:, 62], axis=1)
    return {
        "mouth_lmd_px": float(err[:, MOUTH].mean()), "face_lmd_px": float(err[:, FACE].mean()),
        "yaw_err_deg": float(np.abs(pose[:, 0] - gt_pose[:, 0]).mean()),
        "pitch_err_deg": float(np.abs(pose[:, 1] - gt_pose[:, 1]).mean()),
        "roll_err_deg": float(np.abs(pose[:, 2] - gt_pose[:, 2]).mean()),
        "av_lag_frames": _best_lag(mouth_open, gt.aperture.to_numpy()[src]) if gt.aperture.std() > 0.05 else 0,
    }


def evaluate(table: pd.DataFrame, groundtruth_dir: Path, size: int) -> pd.DataFrame:
    """Per-clip errors for every clip that has ground truth (the synthetic data); empty otherwise."""
    clips_path, frames_path = groundtruth_dir / "clips.parquet", groundtruth_dir / "frames.parquet"
    if not clips_path.is_file():
        return pd.DataFrame()
    gt_clips = pd.read_parquet(clips_path).set_index("clip_id")
    gt_frames = pd.read_parquet(frames_path)
    rows = []
    for clip_id, gt in gt_frames.groupby("clip_id"):
        match = table[table.clip_id == clip_id]
        if match.empty:
            continue
        rows.append({"clip_id": clip_id, "dataset": gt_clips.loc[clip_id, "dataset"],
                     **evaluate_clip(match.iloc[0].to_dict(), gt.sort_values("frame"),
                                     float(gt_clips.loc[clip_id, "fps"]), size)})
    return pd.DataFrame(rows)
