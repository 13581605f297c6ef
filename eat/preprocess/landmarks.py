"""Face landmark detectors behind one interface: 68 iBUG points per frame, plus a face count.

``mediapipe`` (default): MediaPipe Face Mesh 0.10.21, whose models ship in the wheel,
so it runs offline. Its 468 mesh vertices are mapped to the iBUG-68 convention with
the correspondence table below (one vertex, or the mean of two, per iBUG point; after
P. Yan's public MediaPipe→dlib table, checked against the synthetic ground truth in
the tests). ``fan``: face-alignment's 2D-FAN with S3FD, from local weights resolved
through :mod:`eat.weights` (its torch.hub cache is pointed at the weights folder, so
nothing is downloaded).

Faces small in a large frame: MediaPipe's detectors see the frame resized to 128–192 px, so a 100 px face in a
3840×2160 photo shrinks to 5 px and is missed. :class:`FaceFinder` (MediaPipe's full-range detector) searches
the whole frame, then square tiles of decreasing size (:func:`search_tiles`: half the short side each level,
down to ``MIN_TILE`` px, overlapping by half a tile) and stops at the first level that finds a face. The
detector finds faces down to about 5 % of what it sees, but places such tiny ones badly (measured: boxes 4×
too large, or on the shirt), so a level keeps only boxes of at least ``MIN_FRACTION`` (8 %) of its tile and
leaves smaller ones to the next, finer level; the finest (512 px tiles) keeps all, down to ~30 px. ``eat generate``
finds its photo's face and a driving video's face this way; :class:`MediaPipeDetector` falls back to it on a
frame where Face Mesh finds nothing (only frames large enough to be tiled, so small frames behave as before).

Counting faces in a clip: Face Mesh asked for up to two faces runs its face detector on every frame while it
tracks only one, which cost 3.8 ms per 640×360 frame against 2.5 ms when it tracks one face (measured on the
2-core machine); the pipeline's clips show one speaker. :class:`MediaPipeDetector` therefore tracks one face and
counts faces with MediaPipe's short-range detector (Face Mesh's own) on every ``COUNT_EVERY``-th frame from the
first (1.8 ms a call): a second face seen for 0.4 s at 25 fps is found.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from eat.preprocess.crop_geometry import crop
from eat.weights import REGISTRY, resolve

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


MIN_TILE = 512            # smallest tile side of the search, in pixels
MIN_FRACTION = 0.08       # boxes smaller than this share of what the detector saw are left to a finer level
SAME_FACE = 0.5           # two boxes overlapping by this share of the smaller one are one face
MESH_REGION = 2.2         # side of the region Face Mesh sees around a detected face, in box widths
MESH_SIZE = 384           # that region, resized to this many pixels
FALLBACK_PATIENCE = 5     # MediaPipeDetector: frames in a row the tile search may fail before it is skipped
COUNT_EVERY = 10          # MediaPipeDetector in tracking mode: frames between two counts of the faces


def search_tiles(height: int, width: int, min_tile: int = MIN_TILE) -> list[list[tuple[int, int, int]]]:
    """Levels of square tiles (x0, y0, side), coarse to fine, after the whole frame: sides min(h, w) / 2^k down
    to ``min_tile``, overlapping by half a side (a face up to half a tile lies wholly inside one tile); a side
    close to the whole frame's is skipped (the whole-frame pass saw it)."""
    levels = []
    side = min(height, width)
    while side >= min_tile:
        if side < 0.8 * max(height, width):
            stride = side // 2

            def starts(extent: int, side: int = side, stride: int = stride) -> list[int]:
                out = list(range(0, extent - side + 1, stride))
                return out if out[-1] == extent - side else [*out, extent - side]

            levels.append([(x, y, side) for y in starts(height) for x in starts(width)])
        side //= 2
    return levels


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two (x0, y0, w, h) boxes over the smaller one's area."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0) / max(min(a[2] * a[3], b[2] * b[3]), 1e-6)


def merge_boxes(boxes: list[np.ndarray]) -> list[np.ndarray]:
    """One box per face (the largest of those overlapping by ``SAME_FACE``), largest first."""
    kept: list[np.ndarray] = []
    for box in sorted(boxes, key=lambda b: -float(b[2] * b[3])):
        if all(_overlap(box, k) < SAME_FACE for k in kept):
            kept.append(box)
    return kept


def detector_boxes(detector, image: np.ndarray, x0: int = 0, y0: int = 0) -> list[np.ndarray]:
    """Boxes (x0, y0, w, h) in pixels of a MediaPipe face detector's detections in ``image``, shifted by the
    image's offset (x0, y0) in a larger frame; empty boxes are dropped."""
    h, w = image.shape[:2]
    boxes = []
    for d in detector.process(np.ascontiguousarray(image)).detections or []:
        r = d.location_data.relative_bounding_box
        box = np.array([x0 + r.xmin * w, y0 + r.ymin * h, r.width * w, r.height * h], np.float32)
        if box[2] > 0 and box[3] > 0:
            boxes.append(box)
    return boxes


class FaceFinder:
    """Face boxes (x0, y0, w, h) in pixels, largest first: MediaPipe's full-range detector over the whole frame,
    then over tiles until a level finds a face (module docstring)."""

    def __init__(self, min_confidence: float = 0.5, min_tile: int = MIN_TILE) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")
        import mediapipe as mp  # local: slow to import, only the MediaPipe backend needs it, and after GLOG is set

        self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                   min_detection_confidence=min_confidence)
        self.min_tile = min_tile

    def __call__(self, image: np.ndarray, tiles_only: bool = False) -> list[np.ndarray]:
        h, w = image.shape[:2]
        levels: list[list[tuple[int, int, int]]] = [] if tiles_only else [[(0, 0, 0)]]
        levels += search_tiles(h, w, self.min_tile)
        for i, level in enumerate(levels):
            boxes = []
            for x0, y0, side in level:
                part = image if side == 0 else image[y0:y0 + side, x0:x0 + side]
                seen = max(part.shape[:2])
                boxes += [b for b in detector_boxes(self._detector, part, x0, y0)
                          if i == len(levels) - 1 or max(b[2], b[3]) >= MIN_FRACTION * seen]
            if boxes:
                return merge_boxes(boxes)
        return []

    def close(self) -> None:
        self._detector.close()

    def __enter__(self) -> FaceFinder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def mesh_region(box: np.ndarray) -> np.ndarray:
    """The square region (x0, y0, side) Face Mesh sees around a detector box (x0, y0, w, h)."""
    side = MESH_REGION * float(max(box[2], box[3]))
    return np.array([box[0] + box[2] / 2 - side / 2, box[1] + box[3] / 2 - side / 2, side], np.float32)


def region_landmarks(mesh: LandmarkDetector, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """(68, 2) landmarks in image pixels of the face in ``box``, by ``mesh`` on the region around it."""
    region = mesh_region(box)
    found = mesh(crop(image, region, MESH_SIZE))
    if found.landmarks is None:
        return None
    return found.landmarks * (region[2] / MESH_SIZE) + region[:2]


@dataclass(frozen=True)
class Detection:
    landmarks: np.ndarray | None  # (68, 2) float32 pixels of the largest face, None if no face
    n_faces: int


class LandmarkDetector(Protocol):
    def __call__(self, frame: np.ndarray) -> Detection:
        """``frame``: (H, W, 3) uint8 RGB, consecutive frames of one clip in order."""


# Each iBUG point is one mesh vertex or the middle of two: their first and last vertex (the same for one).
_IBUG_FIRST = np.array([idx[0] for idx in MEDIAPIPE_TO_IBUG68])
_IBUG_LAST = np.array([idx[-1] for idx in MEDIAPIPE_TO_IBUG68])


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """(468+, 2) mesh vertices → (68, 2) iBUG landmarks (one gather: 68 per-point means cost 11 % of crop_align)."""
    mesh = np.asarray(mesh, np.float32)
    return (mesh[_IBUG_FIRST] + mesh[_IBUG_LAST]) / np.float32(2)


class MediaPipeDetector:
    """Face Mesh, one instance per clip. Tracking mode follows one face and counts faces every ``COUNT_EVERY``
    frames (module docstring); static mode (single images) looks for up to two faces in each."""

    def __init__(self, static: bool = False, fallback: bool = True) -> None:
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging is noisy and not actionable
        import mediapipe as mp  # local: see FaceFinder

        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=static, max_num_faces=2 if static else 1,
                                                      refine_landmarks=False, min_detection_confidence=0.5,
                                                      min_tracking_confidence=0.5)
        self._counter = None if static else mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                                                        min_detection_confidence=0.5)
        self._frame = 0
        self._fallback = fallback
        self._finder: FaceFinder | None = None
        self._region_mesh: MediaPipeDetector | None = None
        self._last_box: np.ndarray | None = None
        self._misses = 0

    def _mesh_faces(self, frame: np.ndarray) -> Detection:
        h, w = frame.shape[:2]
        found = self._mesh.process(np.ascontiguousarray(frame)).multi_face_landmarks or []
        if not found:
            return Detection(None, 0)
        faces = [np.array([(p.x * w, p.y * h) for p in face.landmark], np.float32) for face in found]
        largest = max(faces, key=lambda f: np.ptp(f[:, 0]) * np.ptp(f[:, 1]))
        # tracking mode sometimes returns the tracked face twice (two meshes on one head): count distinct faces
        distinct = merge_boxes([_landmark_box(f) for f in faces])
        return Detection(mesh_to_ibug68(largest), len(distinct))

    def _count_faces(self, frame: np.ndarray) -> int:
        """Distinct faces the short-range detector finds in ``frame``."""
        return len(merge_boxes(detector_boxes(self._counter, frame)))

    def __call__(self, frame: np.ndarray) -> Detection:
        found = self._mesh_faces(frame)
        if found.landmarks is None and self._fallback and search_tiles(*frame.shape[:2]):
            found = self._small_face(frame)
        if self._counter is not None:
            if self._frame % COUNT_EVERY == 0:
                found = Detection(found.landmarks, max(found.n_faces, self._count_faces(frame)))
            self._frame += 1
        return found

    def _small_face(self, frame: np.ndarray) -> Detection:
        """A face too small in a large frame for Face Mesh's own detector: the region around the last one found
        by the tile search, else a new tile search (skipped after ``FALLBACK_PATIENCE`` failures in a row)."""
        if self._region_mesh is None:
            self._region_mesh = MediaPipeDetector(static=True, fallback=False)
        if self._last_box is not None:
            landmarks = region_landmarks(self._region_mesh, frame, self._last_box)
            if landmarks is not None:
                self._last_box = _landmark_box(landmarks)
                return Detection(landmarks, 1)
        if self._misses >= FALLBACK_PATIENCE:
            return Detection(None, 0)
        if self._finder is None:
            self._finder = FaceFinder()
        boxes = self._finder(frame, tiles_only=True)
        landmarks = region_landmarks(self._region_mesh, frame, boxes[0]) if boxes else None
        if landmarks is None:
            self._misses += 1
            self._last_box = None
            return Detection(None, 0)
        self._misses, self._last_box = 0, _landmark_box(landmarks)
        return Detection(landmarks, len(boxes))

    def close(self) -> None:
        self._mesh.close()
        for other in (self._finder, self._region_mesh, self._counter):
            if other is not None:
                other.close()


def _landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """A detector-like box (x0, y0, w, h) around 68 landmarks (the next frame's search region)."""
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    return np.array([x0, y0, x1 - x0, y1 - y0], np.float32)


class FanDetector:
    """face-alignment 2D-FAN + S3FD from local weights (crop_align.fan_weights or $EAT_WEIGHTS_DIR)."""

    def __init__(self, weights_folder: str) -> None:
        folder = resolve("fan_2d", weights_folder or None).parent
        resolve("s3fd", folder)
        # face-alignment loads through torch.hub's cache: point it at the folder holding the checked files.
        hub = folder / "hub"
        (hub / "checkpoints").mkdir(parents=True, exist_ok=True)
        for name in ("fan_2d", "s3fd"):
            link = hub / "checkpoints" / REGISTRY[name].filename
            if not link.exists():
                link.symlink_to(folder / REGISTRY[name].filename)
        os.environ["TORCH_HOME"] = str(folder)
        # local: face-alignment and torch take seconds to import, only this optional backend needs them, and
        # TORCH_HOME must be set first
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
