"""A tiny preprocessed dataset for the latent-model stages: aligned mp4 + landmarks + pose per clip.

Three MEAD identities (two train, one test), each with a neutral and an angry clip of the same
sentence; 32 × 32 frames in which a shaded "face" moves sideways and opens its "mouth". Written
in the layouts of eat/schema.py, with the pose-stage table that ``train_latent`` and
``extract_latent`` read.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from eat.io.arrays import write_npz
from eat.io.media import write_video
from eat.io.video import read_frames

SIZE = 32
FRAMES = 10
STEPS = 30


def _clip(identity: int, angry: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (T, S, S, 3), landmarks (T, 68, 2) and pose (T, 6) of one clip."""
    frames, landmarks, poses = [], [], []
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    for t in range(FRAMES):
        shift = 3 * np.sin(t / 2 + identity)
        cx, cy = SIZE / 2 + shift, SIZE / 2
        img = np.full((SIZE, SIZE, 3), 40 + 30 * identity, np.uint8)
        cv2.ellipse(img, (int(cx * 16), int(cy * 16)), (9 * 16, 11 * 16), 0, 0, 360, (200, 160 - 20 * identity, 120),
                    -1, cv2.LINE_AA, shift=4)
        mouth = 1 + (t % 4) + (3 if angry else 0)
        cv2.ellipse(img, (int(cx * 16), int((cy + 5) * 16)), (4 * 16, mouth * 8), 0, 0, 360, (60, 20, 20), -1,
                    cv2.LINE_AA, shift=4)
        frames.append(img)
        landmarks.append(np.stack([cx + 9 * np.cos(angles), cy + 11 * np.sin(angles)], 1).astype(np.float32))
        poses.append([6 * np.sin(t / 2 + identity), 0, 0, 0, 0, 500])
    return np.stack(frames), np.stack(landmarks), np.asarray(poses, np.float32)


def write_latent_fixture(root: Path) -> Path:
    """Write the clips under ``root``; returns the path of the pose-stage table."""
    rows = []
    for i, (identity, split) in enumerate((("M005", "train"), ("W011", "train"), ("W009", "test"))):
        for emotion in ("neutral", "angry"):
            frames, landmarks, pose = _clip(i, emotion == "angry")
            uid = f"MEAD__{identity}__{emotion}__001"
            video, arrays, pose_path = root / f"{uid}.mp4", root / f"{uid}.npz", root / f"{uid}.npy"
            write_video(video, iter(frames), 25.0, SIZE, SIZE, crf=12, pix_fmt="yuv444p")
            write_npz(arrays, {"landmarks": landmarks, "frames": read_frames(video, SIZE),   # as crop_align stores
                               "box": np.tile(np.array([0, 0, SIZE, SIZE], np.float32), (FRAMES, 1))})
            np.save(pose_path, pose)
            rows.append({"clip_id": uid.replace("__", "/"), "uid": uid, "dataset": "MEAD", "identity": identity,
                         "emotion": emotion, "level": 3 if emotion == "angry" else 1, "sentence": "001",
                         "split": split, "n_frames": FRAMES, "aligned": str(video), "aligned_arrays": str(arrays),
                         "pose": str(pose_path)})
    table = root / "pose.parquet"
    pd.DataFrame(rows).to_parquet(table)
    return table


def fixture_overlay() -> dict:
    """Params overlay (on the micro profile) sized for this fixture: 32² frames, 30 steps, checkpoints every 2.

    Enough steps that a test polling for the first checkpoint kills the run well before its end.
    """
    return {"signal": {"image_size": SIZE}, "crop_align": {"size": SIZE}, "ray": {"workers": 1},
            "latent_train": {"steps": STEPS, "batch_size": 2, "checkpoint_every": 2, "log_every": 1,
                             "threads_per_worker": 1, "eval_frames_per_clip": 3,
                             "headpose_labels": "estimated"}}   # the fixture's clips have no synthetic sidecars
