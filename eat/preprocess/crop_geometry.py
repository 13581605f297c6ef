"""The square crop of a face: where it lies (the official crop rule) and cutting it out of a frame.

Shared by the ``crop_align`` stage, the landmark detector (Face Mesh runs on a crop around the detected face)
and ``eat generate`` (a user's photo or driving video), so that all three cut faces the same way.
"""

from __future__ import annotations

import cv2
import numpy as np


def crop_box(landmarks: np.ndarray, scale: float) -> np.ndarray:
    """(68, 2) landmarks → (x0, y0, side) of the square crop (the official rule: :mod:`eat.preprocess.crop_align`)."""
    x_min, y_min = landmarks.min(axis=0)
    x_max, y_max = landmarks.max(axis=0)
    side = scale * (x_max - x_min)
    cx, cy = (x_min + x_max) / 2, (3 * y_min + y_max) / 4
    return np.array([cx - side / 2, cy - side / 2, side], np.float32)


def crop(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Cut the square ``box`` (x0, y0, side) out of ``frame`` and resize it to size × size."""
    x0, y0, side = (float(v) for v in box)
    scale = size / side
    affine = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(frame, affine, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)
