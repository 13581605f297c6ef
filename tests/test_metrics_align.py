"""Face alignment before PSNR/SSIM/FID/LMD: known similarity transforms are undone, small frames are upsampled for
the detector, frames without a face are dropped on both sides, and a real face aligns the same at 64² and 512²."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from eat.preprocess.landmarks import Detection
from eat.scoring import REFERENCE_FACE, detector_factory
from metrics.align import (
    ALIGN_POINTS,
    ALIGN_SIZE,
    align_frame,
    align_pair,
    align_video,
    pair_indices,
    similarity,
    template,
    transform_points,
)

TEMPLATE = template(REFERENCE_FACE)      # (68, 2) in 128² crop pixels


def rotation(deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.radians(deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


class FixedDetector:
    """Reports ``landmarks`` (given for a ``ref``² frame) scaled to the frame it is shown; records frame sizes."""

    def __init__(self, landmarks: np.ndarray | None, ref: int):
        self.landmarks, self.ref, self.sizes = landmarks, ref, []

    def __call__(self, frame: np.ndarray) -> Detection:
        self.sizes.append(frame.shape[0])
        if self.landmarks is None:
            return Detection(None, 0)
        return Detection((self.landmarks * frame.shape[0] / self.ref).astype(np.float32), 1)


def test_template_is_a_centred_frontal_face_inside_the_crop():
    t = template(REFERENCE_FACE)
    assert t.shape == (68, 2)
    assert (t > 0).all() and (t < ALIGN_SIZE).all()
    assert np.ptp(t[:, 0]) == pytest.approx(0.75 * ALIGN_SIZE)
    assert t[30, 0] == pytest.approx(ALIGN_SIZE / 2)                 # nose tip on the vertical midline
    assert t[36, 1] == pytest.approx(t[45, 1])                       # eyes level
    assert t[8, 1] > t[57, 1] > t[33, 1] > t[27, 1] > t[19, 1]       # brow above nose above mouth above chin


def test_similarity_recovers_a_known_transform():
    src = np.random.default_rng(0).uniform(0, 100, (13, 2))
    m = rotation(17.0, 1.7, (5.0, -3.0))
    np.testing.assert_allclose(similarity(src, transform_points(src, m)), m, atol=1e-9)


def test_a_rotated_scaled_face_is_aligned_back_onto_the_template():
    m = rotation(-12.0, 2.3, (40.0, 25.0))               # template → a 400² frame
    landmarks = transform_points(TEMPLATE, m)
    frame = np.zeros((400, 400, 3), np.uint8)
    for p in landmarks:
        cv2.circle(frame, tuple(int(round(v)) for v in p), 3, (255, 255, 255), -1, cv2.LINE_AA)
    crop, crop_lm = align_frame(frame, landmarks, REFERENCE_FACE)
    assert crop.shape == (ALIGN_SIZE, ALIGN_SIZE, 3) and crop.dtype == np.uint8
    np.testing.assert_allclose(crop_lm, TEMPLATE, atol=1e-3)
    for x, y in TEMPLATE[ALIGN_POINTS].round().astype(int):  # the drawn dots land on the template's points
        assert crop[y, x].max() > 100


def test_small_frames_are_upsampled_for_the_detector_and_landmarks_scaled_back():
    lm = transform_points(TEMPLATE, rotation(0.0, 0.5, (0.0, 0.0)))   # face in a 64² frame
    det = FixedDetector(lm, ref=64)
    video = align_video(np.zeros((3, 64, 64, 3), np.uint8), det, REFERENCE_FACE)
    assert det.sizes == [256, 256, 256]
    assert video.found.all()
    np.testing.assert_allclose(video.landmarks, np.broadcast_to(TEMPLATE, (3, 68, 2)), atol=1e-3)


def test_frames_pair_up_as_evaluation_eat_and_faceless_frames_drop_on_both_sides():
    fake_idx, real_idx = pair_indices(10, 4)
    assert fake_idx.tolist() == [0, 2, 5, 7] and real_idx.tolist() == [0, 1, 2, 3]
    lm = transform_points(TEMPLATE, rotation(0.0, 2.0, (0.0, 0.0)))
    detectors = iter([FixedDetector(lm, 256), FixedDetector(None, 256)])
    fake, real = align_pair(np.zeros((5, 256, 256, 3), np.uint8), np.zeros((5, 256, 256, 3), np.uint8),
                            lambda: next(detectors), REFERENCE_FACE)
    assert not fake.found.any() and not real.found.any()


def test_mediapipe_aligns_a_real_face_the_same_at_64_and_512_pixels():
    from skimage.data import astronaut

    image = astronaut()[:300, 60:360]                      # the face, roughly centred
    big = cv2.resize(image, (512, 512), interpolation=cv2.INTER_AREA)
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)
    new = detector_factory("mediapipe")
    a_big, a_small = align_video(big[None], new(), REFERENCE_FACE), align_video(small[None], new(), REFERENCE_FACE)
    assert a_big.found.all() and a_small.found.all()
    # The same face lands at the same place in the crop whatever the input size (within detector noise).
    err = np.linalg.norm(a_big.landmarks - a_small.landmarks, axis=-1).mean()
    assert err < 3.0, err
    np.testing.assert_allclose(a_big.landmarks[0, ALIGN_POINTS], TEMPLATE[ALIGN_POINTS], atol=6.0)
