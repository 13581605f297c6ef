"""6-DoF head pose per frame from 2D landmarks, by PnP against a generic 3D face.

The 3D reference is the mean identity of :mod:`eat.synth.face_model` (anthropometric
proportions, millimetres). Only rigid points enter the fit — the ear-level jaw ends,
the nose and the eye corners — so expressions and speech do not tilt the estimate.
The camera is a pinhole with focal length = the frame's larger side (≈ 53° field
of view) and the principal point at the frame centre; angles are insensitive to that
guess, translations scale with it.

Conventions (eat/schema.py): yaw, pitch, roll in degrees — positive yaw turns the face
to the image right, positive pitch looks up, positive roll tilts clockwise on screen —
and tx, ty, tz: the face origin (between the eyes) in the camera frame in millimetres
(x right, y down, z = distance from the camera).
"""

from __future__ import annotations

import cv2
import numpy as np

from eat.synth.face_model import FaceShape, neutral_landmarks

RIGID = np.r_[0, 16, 27:36, 36, 39, 42, 45]
_FLIP_Z = np.diag([1.0, 1.0, -1.0])  # face-model frame (z towards the camera) ↔ OpenCV camera frame


def _model_points() -> np.ndarray:
    return (neutral_landmarks(FaceShape())[RIGID] @ _FLIP_Z).astype(np.float64)


def angles_from_rotation(rot_cv: np.ndarray) -> np.ndarray:
    """OpenCV rotation → (yaw, pitch, roll) degrees of R = R_roll · R_yaw · R_pitch in the face-model frame."""
    r = _FLIP_Z @ rot_cv @ _FLIP_Z
    yaw = np.degrees(np.arcsin(np.clip(-r[2, 0], -1, 1)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return np.array([yaw, pitch, roll])


def estimate_pose(landmarks: np.ndarray, width: int, height: int, smooth_frames: int = 1) -> np.ndarray:
    """(T, 68, 2) landmarks in frame pixels → (T, 6) pose; ``smooth_frames`` > 1 applies a centred moving average."""
    focal = float(max(width, height))
    camera = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]], np.float64)
    model = _model_points()
    poses = np.zeros((len(landmarks), 6))
    rvec = tvec = None
    for i, lm in enumerate(landmarks):
        image = lm[RIGID].astype(np.float64)
        guess = rvec is not None
        ok, rvec, tvec = cv2.solvePnP(model, image, camera, None, rvec, tvec, useExtrinsicGuess=guess,
                                      flags=cv2.SOLVEPNP_ITERATIVE)
        if not ok:
            raise ValueError(f"PnP failed on frame {i}")
        poses[i, :3] = angles_from_rotation(cv2.Rodrigues(rvec)[0])
        poses[i, 3:] = tvec.ravel()
    if smooth_frames > 1 and len(poses) > 1:
        pad = smooth_frames // 2
        padded = np.pad(poses, ((pad, smooth_frames - 1 - pad), (0, 0)), mode="edge")
        kernel = np.ones(smooth_frames) / smooth_frames
        poses = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(6)], axis=1)
    return poses.astype(np.float32)
