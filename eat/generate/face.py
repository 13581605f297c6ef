"""The source face of ``eat generate``: any portrait photo → the aligned S × S crop the models were trained on.

The training clips were cropped by the official rule (:mod:`eat.preprocess.crop_align`): 68 iBUG landmarks →
a square box centred at x = the landmarks' middle, y = (3·min_y + max_y) / 4, side 2.1 × face width →
``crop_align.size`` → area-resized to ``signal.image_size``. A photo gets the same rule, so a user's face
sits in the crop where the training faces sat.

Finding the face: MediaPipe's full-range face detector (faces down to ~5 % of what it sees, several per image)
over the whole photo, then over tiles of decreasing size until a level finds a face
(:class:`eat.preprocess.landmarks.FaceFinder`: a 100 px face in a 3840×2160 photo is found), counts the faces
and picks the largest box; Face Mesh (the pipeline's landmark detector,
:class:`eat.preprocess.landmarks.MediaPipeDetector`) then runs on a square region around that face only, so a
small face in a large photo or a group photo still gets landmarks. :func:`paste_back` puts generated crops back
into the photo through the same box, with a feathered edge.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from eat.config import Params
from eat.preprocess.crop_geometry import crop, crop_box
from eat.preprocess.landmarks import FaceFinder, MediaPipeDetector, region_landmarks

log = logging.getLogger(__name__)

OnMultiple = Literal["largest", "fail"]
FEATHER = 0.12             # paste-back: width of the blended border, as a fraction of the crop side


class FaceError(ValueError):
    """The image has no usable face (or several, with ``on_multiple="fail"``); the message names the file."""


@dataclass(frozen=True)
class Face:
    """The aligned source face and where it came from."""

    frame: np.ndarray          # (S, S, 3) uint8 RGB, S = signal.image_size
    image: np.ndarray          # (H, W, 3) uint8 RGB, the whole photo
    box: np.ndarray            # (x0, y0, side) of the crop in photo pixels (may reach outside the photo)
    landmarks: np.ndarray      # (68, 2) iBUG landmarks in photo pixels
    n_faces: int               # faces the detector found (the largest was used)
    path: str


def read_image(path: Path | str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of any image OpenCV reads (EXIF orientation applied); :class:`FaceError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FaceError(f"{path}: image file not found")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FaceError(f"{path}: cannot read the image (not a format OpenCV decodes: use JPEG, PNG, BMP, WebP "
                        "or TIFF)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence MediaPipe's C++ start-up chatter (TFLite, absl: written before its log level applies)."""
    if os.environ.get("EAT_VERBOSE_NATIVE"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def detect_faces(image: np.ndarray) -> list[np.ndarray]:
    """Face boxes (x0, y0, w, h) in pixels, largest first (full-range detector, whole photo then tiles)."""
    with quiet_native_stderr(), FaceFinder() as finder:
        return finder(image)


def face_landmarks(image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """(68, 2) landmarks in image pixels of the face in ``box`` (Face Mesh on a square region around it)."""
    with quiet_native_stderr():
        detector = MediaPipeDetector(static=True, fallback=False)
        try:
            return region_landmarks(detector, image, box)
        finally:
            detector.close()


def prepare_face(image_path: Path | str, params: Params, on_multiple: OnMultiple = "largest") -> Face:
    """Detect, align and crop the face of a photo by the training crop rule (module docstring).

    No face → :class:`FaceError`. Several faces → a warning and the largest (``on_multiple="largest"``) or
    :class:`FaceError` (``"fail"``).
    """
    image = read_image(image_path)
    boxes = detect_faces(image)
    if not boxes:
        raise FaceError(f"{image_path}: no face found; use a photo with one clearly visible, roughly frontal face")
    if len(boxes) > 1:
        sizes = ", ".join(f"{int(b[2])}×{int(b[3])} px" for b in boxes)
        if on_multiple == "fail":
            raise FaceError(f"{image_path}: {len(boxes)} faces found ({sizes}); crop the photo to one face, or "
                            "allow the largest (--on-multiple largest)")
        log.warning("%s: %d faces found (%s); using the largest", image_path, len(boxes), sizes)
    landmarks = next((lm for lm in (face_landmarks(image, b) for b in boxes) if lm is not None), None)
    if landmarks is None:
        raise FaceError(f"{image_path}: a face was detected but its landmarks were not found (too small, occluded "
                        "or in profile?); use a larger, frontal face")
    box = crop_box(landmarks, params.crop_align.scale)
    aligned = crop(image, box, params.crop_align.size)
    size = params.signal.image_size
    if size != params.crop_align.size:
        aligned = cv2.resize(aligned, (size, size), interpolation=cv2.INTER_AREA)   # as read_frames
    return Face(aligned, image, box, landmarks, len(boxes), str(image_path))


def paste_mask(side: int) -> np.ndarray:
    """(side, side) float32 weights: 1 inside, a cosine ramp over the outer ``FEATHER`` of the crop to 0."""
    ramp = max(1, int(round(FEATHER * side)))
    edge = np.minimum(np.arange(side), np.arange(side)[::-1]).astype(np.float32)
    w = np.clip(edge / ramp, 0, 1)
    w = 0.5 - 0.5 * np.cos(np.pi * w)
    return np.minimum(w[:, None], w[None, :])


class PasteBack:
    """Puts generated (S, S, 3) crops back into the photo through the crop box; output size even (H.264)."""

    def __init__(self, face: Face):
        h, w = face.image.shape[:2]
        self.height, self.width = h - h % 2, w - w % 2
        self.image = face.image[:self.height, :self.width].astype(np.float32)
        x0, y0, side = (float(v) for v in face.box)
        self.side = max(2, int(round(side)))
        self.x0, self.y0 = int(round(x0)), int(round(y0))
        # the part of the box inside the image, in image and in box coordinates
        self.ix0, self.iy0 = max(self.x0, 0), max(self.y0, 0)
        self.ix1, self.iy1 = min(self.x0 + self.side, self.width), min(self.y0 + self.side, self.height)
        mask = paste_mask(self.side)
        self.mask = mask[self.iy0 - self.y0:self.iy1 - self.y0, self.ix0 - self.x0:self.ix1 - self.x0, None]

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        big = cv2.resize(frame, (self.side, self.side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        part = big[self.iy0 - self.y0:self.iy1 - self.y0, self.ix0 - self.x0:self.ix1 - self.x0]
        out = self.image.copy()
        region = out[self.iy0:self.iy1, self.ix0:self.ix1]
        out[self.iy0:self.iy1, self.ix0:self.ix1] = self.mask * part + (1 - self.mask) * region
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
