"""The ``pose`` stage: per-frame 6-DoF head pose of every aligned clip (PnP on its landmarks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eat.io.atomic import atomic_path
from eat.preprocess.head_pose import estimate_pose

POSE_SMOOTH_FRAMES = 3  # a 120 ms moving average at 25 fps removes landmark jitter, keeps nods


def frame_landmarks(arrays_path: str, size: int) -> np.ndarray:
    """(T, 68, 2) landmarks back in normalised-frame pixels from the crop-space ones and the boxes."""
    with np.load(arrays_path) as arrays:
        crop_lm, box = arrays["landmarks"], arrays["box"]
    return crop_lm * (box[:, None, 2:3] / size) + box[:, None, :2]


def pose_clip(row: dict, out_dir: Path, size: int) -> dict:
    landmarks = frame_landmarks(row["aligned_arrays"], size)
    pose = estimate_pose(landmarks, int(row["width"]), int(row["height"]), POSE_SMOOTH_FRAMES)
    if len(pose) != row["n_frames"]:
        raise ValueError(f"{row['aligned_arrays']}: {len(pose)} landmark rows for {row['n_frames']} frames")
    out = out_dir / f"{row['uid']}.npy"
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.save(fh, pose)
    return {"pose": str(out)}
