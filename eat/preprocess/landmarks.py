"""Face landmark detectors behind one interface: 68 iBUG points per frame, plus a face count.

``mediapipe`` (default): MediaPipe Face Mesh 0.10.21, whose models ship in the wheel,
so it runs offline. Its 468 mesh vertices are mapped to the iBUG-68 convention with
the correspondence table below (one vertex, or the mean of two, per iBUG point; after
P. Yan's public MediaPipe→dlib table, checked against the synthetic ground truth in
the tests). ``fan``: face-alignment's 2D-FAN with S3FD, from local weights resolved
through :mod:`eat.weights` (its torch.hub cache is pointed at the weights folder, so
nothing is downloaded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# iBUG-68 index → MediaPipe Face Mesh vertex(es). Jaw 0–16, brows 17–26, nose 27–35,
# eyes 36–47 (36–41 the subject's right eye, on the image left), lips 48–67.
MEDIAPIPE_TO_IBUG68: tuple[tuple[int, ...], ...] = (
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,), (400,), (379,), (365,),
    (397, 288), (361,), (323,), (454,), (356,),
    (70,), (63,), (105,), (66,), (107,), (336,), (296,), (334,), (293,), (300,),
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    (33,), (160,), (158,), (133,), (153,), (144,), (362,), (385,), (387,), (263,), (373,), (380,),
    (61,), (40,), (37,), (0,), (267,), (270,), (291,), (321,), (314,), (17,), (84,), (91,),
    (78,), (81,), (13,), (311,), (308,), (402,), (14,), (178,),
)


@dataclass(frozen=True)
class Detection:
    landmarks: np.ndarray | None  # (68, 2) float32 pixels of the largest face, None if no face
    n_faces: int


class LandmarkDetector(Protocol):
    def __call__(self, frame: np.ndarray) -> Detection:
        """``frame``: (H, W, 3) uint8 RGB, consecutive frames of one clip in order."""


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """(468+, 2) mesh vertices → (68, 2) iBUG landmarks."""
    return np.stack([mesh[list(idx)].mean(axis=0) for idx in MEDIAPIPE_TO_IBUG68]).astype(np.float32)


class MediaPipeDetector:
    """Face Mesh in tracking mode (one instance per clip), up to two faces so that extra faces are seen."""

    def __init__(self, static: bool = False) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging is noisy and not actionable
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=2,
                                                      refine_landmarks=False, min_detection_confidence=0.5,
                                                      min_tracking_confidence=0.5)

    def __call__(self, frame: np.ndarray) -> Detection:
        h, w = frame.shape[:2]
        found = self._mesh.process(np.ascontiguousarray(frame)).multi_face_landmarks or []
        if not found:
            return Detection(None, 0)
        faces = [np.array([(p.x * w, p.y * h) for p in face.landmark], np.float32) for face in found]
        largest = max(faces, key=lambda f: np.ptp(f[:, 0]) * np.ptp(f[:, 1]))
        return Detection(mesh_to_ibug68(largest), len(faces))

    def close(self) -> None:
        self._mesh.close()


class FanDetector:
    """face-alignment 2D-FAN + S3FD from local weights (crop_align.fan_weights or $EAT_WEIGHTS_DIR)."""

    def __init__(self, weights_folder: str) -> None:
        from eat.weights import resolve

        folder = resolve("fan_2d", weights_folder or None).parent
        resolve("s3fd", folder)
        # face-alignment loads through torch.hub's cache: point it at the folder holding the checked files.
        hub = folder / "hub"
        (hub / "checkpoints").mkdir(parents=True, exist_ok=True)
        for name in ("fan_2d", "s3fd"):
            from eat.weights import REGISTRY

            link = hub / "checkpoints" / REGISTRY[name].filename
            if not link.exists():
                link.symlink_to(folder / REGISTRY[name].filename)
        os.environ["TORCH_HOME"] = str(folder)
        import face_alignment
        import torch

        self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D,
                                                device="cuda" if torch.cuda.is_available() else "cpu")

    def __call__(self, frame: np.ndarray) -> Detection:
        found = self._fa.get_landmarks_from_image(frame) or []
        if not found:
            return Detection(None, 0)
        largest = max(found, key=lambda f: np.ptp(f[:, 0]) * np.ptp(f[:, 1]))
        return Detection(np.asarray(largest[:, :2], np.float32), len(found))

    def close(self) -> None:
        """Nothing to release."""


def make_detector(backend: str, fan_weights: str = "") -> MediaPipeDetector | FanDetector:
    if backend == "mediapipe":
        return MediaPipeDetector()
    if backend == "fan":
        return FanDetector(fan_weights)
    raise ValueError(f"crop_align.backend: unknown landmark backend {backend!r} (mediapipe or fan)")
