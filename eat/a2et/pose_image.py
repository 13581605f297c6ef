"""The per-frame pose image A2ET sees beside the speech features: a drawn 3D head box (official: 64², one channel).

The official code draws the head's bounding box in 3D, rotated by the frame's head pose and shifted by
its translation, and feeds the line drawing to a small CNN (``feature_extract``). Here a cube of half-side
:data:`BOX_HALF` in the latent model's normalised coordinates (x right, y down, z depth, each in [−1, 1])
is rotated by R(yaw, pitch, roll) — the same rotation as Eq. 1 (eat/models/keypoints.py) — translated by
(tx, ty), projected orthographically and drawn anti-aliased; a dot marks the face side so a 180° turn is
not invisible.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import torch

from eat.models.keypoints import rotation_matrix

BOX_HALF = 0.45
CORNERS = np.array(list(itertools.product((-1, 1), repeat=3)), np.float32) * BOX_HALF     # (8, 3)
EDGES = [(a, b) for a, b in itertools.combinations(range(8), 2) if np.sum(CORNERS[a] != CORNERS[b]) == 1]
FRONT = np.array([0.0, 0.0, -BOX_HALF], np.float32)   # the face side: −z looks at the camera (OSFV's volume)


def head_box_images(pose: np.ndarray, size: int) -> np.ndarray:
    """(T, 6) yaw, pitch, roll [deg], tx, ty, tz → (T, size, size) uint8 line drawings of the head box."""
    pose = np.asarray(pose, np.float32)
    rotation = rotation_matrix(*torch.from_numpy(pose[:, :3]).unbind(-1)).numpy()              # (T, 3, 3)
    points = np.concatenate([np.broadcast_to(CORNERS, (len(pose), 8, 3)), np.broadcast_to(FRONT, (len(pose), 1, 3))],
                            axis=1) @ rotation.transpose(0, 2, 1) + pose[:, None, 3:6]
    pixels = (points[..., :2] * 0.5 + 0.5) * (size - 1)
    scale = 16   # cv2's sub-pixel shift: 4 fractional bits
    fixed = np.round(pixels * scale).astype(np.int32)
    images = np.zeros((len(pose), size, size), np.uint8)
    for image, p in zip(images, fixed, strict=True):
        for a, b in EDGES:
            cv2.line(image, tuple(p[a]), tuple(p[b]), 255, 1, cv2.LINE_AA, shift=4)
        cv2.circle(image, tuple(p[8]), max(size // 32, 1) * scale, 255, -1, cv2.LINE_AA, shift=4)
    return images
