"""Face crop and alignment of generated and ground-truth frames: the 128² crops behind PSNR, SSIM, FID and LMD.

Official protocol (evaluation_eat ``utils_crop.crop_and_align``;
docs/paper_notes.md §7): per frame, 68 landmarks (dlib there), a similarity transform that maps the frame's
nose and eye landmarks onto a fixed 68-point template, a warp, a 128×128 crop; a frame where either
video has no face is skipped. Both videos go through the same code and the same detector.

Ours, and why it differs where it does:

- Landmarks: the detector passed in (:class:`LandmarkDetector`; this pipeline's are eat/preprocess/landmarks.py's
  MediaPipe Face Mesh mapped to iBUG-68 offline, or FAN from the weights registry, made by
  ``eat.scoring.detector_factory``); one detector instance per video (MediaPipe tracks within a clip). Frames
  smaller than :data:`WORK_SIZE` (the default profile generates 64²) are upsampled for detection only, and the
  landmarks scaled back, because MediaPipe misses faces of a few dozen pixels.
- Template: the official ``base_68.npy`` is not published (it ships in the authors' code bundle), so the
  template is a reference face passed in (this pipeline's: ``eat.scoring.REFERENCE_FACE``, the generic face of
  eat/synth/face_model.py that head-pose PnP uses), frontal, its 68 landmarks :data:`FACE_WIDTH` of the crop
  wide, centred at :data:`FACE_CENTRE` (:func:`template`). Absolute PSNR/SSIM depend a little on this framing;
  comparisons between methods do not.
- Alignment points: the nose (27–35) and the eye corners (36, 39, 42, 45). The official fit uses 27–44 and
  switches between an open- and a closed-eye template; corners do not move with a blink, lids do.
- Landmarks of the aligned crop: the detected ones mapped through the same transform (the official
  script runs the detector again on the crops; mapping is exact and halves detection time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

ALIGN_SIZE = 128                       # evaluation_eat's crop side
WORK_SIZE = 256                        # detector input side for smaller frames
FACE_WIDTH = 0.75                      # template: landmark bounding-box width / crop side
FACE_CENTRE = (0.5, 0.55)              # template: bounding-box centre (x, y) / crop side
ALIGN_POINTS = np.r_[27:36, 36, 39, 42, 45]


class Detection(Protocol):
    @property
    def landmarks(self) -> np.ndarray | None:
        """(68, 2) iBUG landmarks in frame pixels of the face found, None if no face."""


class LandmarkDetector(Protocol):
    def __call__(self, frame: np.ndarray) -> Detection:
        """``frame``: (H, W, 3) uint8 RGB, consecutive frames of one video in order."""


def template(reference_face: np.ndarray, size: int = ALIGN_SIZE) -> np.ndarray:
    """(68, 2) float64 iBUG landmarks of the frontal ``reference_face`` ((68, 2), any units) in ``size``² crop
    pixels: :data:`FACE_WIDTH` of the crop wide, its bounding box centred at :data:`FACE_CENTRE`."""
    pts = np.asarray(reference_face, np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return ((pts - (lo + hi) / 2) * (FACE_WIDTH / (hi[0] - lo[0])) + np.array(FACE_CENTRE)) * size


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity (rotation, uniform scale, shift; no reflection) mapping (N, 2) src → dst."""
    s, d = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    sc, dc = s - s.mean(0), d - d.mean(0)
    norm = (sc ** 2).sum()
    a = (sc * dc).sum() / norm
    b = (sc[:, 0] * dc[:, 1] - sc[:, 1] * dc[:, 0]).sum() / norm
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (d.mean(0) - rot @ s.mean(0))[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(..., 2) points through a (2, 3) affine matrix."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def align_frame(frame: np.ndarray, landmarks: np.ndarray, reference_face: np.ndarray,
                size: int = ALIGN_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 frame and its (68, 2) landmarks → (size, size, 3) crop aligned onto the :func:`template` of
    ``reference_face`` and its (68, 2) landmarks.

    Bilinear warp with black outside the frame, as skimage's ``warp`` in the official code.
    """
    matrix = similarity(landmarks[ALIGN_POINTS], template(reference_face, size)[ALIGN_POINTS])
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, transform_points(landmarks, matrix).astype(np.float32)


def detect(frames: np.ndarray, detector: LandmarkDetector, work_size: int = WORK_SIZE) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames of one video → (T, 68, 2) float32 landmarks in frame pixels, NaN where no face."""
    t, h, w = frames.shape[:3]
    scale = max(1.0, work_size / max(h, w))
    out = np.full((t, 68, 2), np.nan, np.float32)
    size = (round(w * scale), round(h * scale))
    for i, frame in enumerate(frames):
        seen = cv2.resize(frame, size, interpolation=cv2.INTER_CUBIC) if scale > 1 else frame
        found = detector(seen).landmarks
        if found is not None:
            out[i] = found / scale
    return out


@dataclass(frozen=True)
class AlignedVideo:
    """Aligned crops of one video: frames (T, S, S, 3) uint8 (zeros where no face), landmarks (T, 68, 2) float32
    in crop pixels (NaN where no face), found (T,) bool."""

    frames: np.ndarray
    landmarks: np.ndarray
    found: np.ndarray


def align_video(frames: np.ndarray, detector: LandmarkDetector, reference_face: np.ndarray, size: int = ALIGN_SIZE,
                work_size: int = WORK_SIZE) -> AlignedVideo:
    """Detect, align (onto ``reference_face``, :func:`align_frame`) and crop every frame of one video (T, H, W, 3)
    uint8 RGB."""
    landmarks = detect(frames, detector, work_size)
    found = ~np.isnan(landmarks).any(axis=(1, 2))
    crops = np.zeros((len(frames), size, size, 3), np.uint8)
    aligned = np.full_like(landmarks, np.nan)
    for i in np.flatnonzero(found):
        crops[i], aligned[i] = align_frame(frames[i], landmarks[i], reference_face, size)
    return AlignedVideo(crops, aligned, found)


def pair_indices(n_fake: int, n_real: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame pairs of two videos of possibly different lengths, as evaluation_eat: ``min(n_fake, n_real)`` pairs,
    indices ``linspace(0, n, length, endpoint=False)`` into each."""
    length = min(n_fake, n_real)
    return (np.linspace(0, n_fake, length, endpoint=False).astype(np.int64),
            np.linspace(0, n_real, length, endpoint=False).astype(np.int64))


DetectorFactory = Callable[[], LandmarkDetector]      # a new detector per video, the same backend for both sides


def align_fresh(frames: np.ndarray, new_detector: DetectorFactory, reference_face: np.ndarray,
                size: int = ALIGN_SIZE) -> AlignedVideo:
    """:func:`align_video` with a detector of its own (a tracking detector must not carry one video's face into
    the next), closed after."""
    detector = new_detector()
    try:
        return align_video(frames, detector, reference_face, size)
    finally:
        getattr(detector, "close", lambda: None)()


def align_pair(fake: np.ndarray, real: np.ndarray, new_detector: DetectorFactory, reference_face: np.ndarray,
               size: int = ALIGN_SIZE, real_aligned: AlignedVideo | None = None) -> tuple[AlignedVideo, AlignedVideo]:
    """Pair the frames of a generated and a ground-truth video (:func:`pair_indices`) and align both onto
    ``reference_face``; frames where either side has no face are marked not found on both. ``real_aligned``: the
    ground truth's alignment computed before (same length as ``fake``), reused when one test clip is scored for
    many models."""
    idx_fake, idx_real = pair_indices(len(fake), len(real))
    sides = [fake[idx_fake]] if real_aligned is not None and len(real) == len(fake) else [fake[idx_fake],
                                                                                          real[idx_real]]
    out = [align_fresh(frames, new_detector, reference_face, size) for frames in sides]
    if len(out) == 1:
        out.append(real_aligned)
    both = out[0].found & out[1].found
    return tuple(AlignedVideo(v.frames, v.landmarks, both) for v in out)  # type: ignore[return-value]
