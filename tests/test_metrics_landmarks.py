"""M-LMD / F-LMD: zero for identical or translated faces, a known value for a known mouth deformation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eat.scoring import REFERENCE_FACE
from metrics.align import template
from metrics.landmarks import MOUTH, video_lmd


@pytest.fixture
def faces() -> np.ndarray:
    jitter = np.random.default_rng(0).normal(0, 1.0, (6, 68, 2))
    return (template(REFERENCE_FACE) + jitter).astype(np.float32)                      # (T, 68, 2) in 128² crop pixels


def test_identical_and_translated_faces_have_zero_distance(faces):
    assert video_lmd(faces, faces) == {"M-LMD": 0.0, "F-LMD": 0.0, "lmd_frames": 6}
    moved = video_lmd(faces + np.array([7.0, -3.0], np.float32), faces)   # landmarks are mean-centred
    assert moved["M-LMD"] == pytest.approx(0, abs=1e-5) and moved["F-LMD"] == pytest.approx(0, abs=1e-5)


def test_a_zero_mean_mouth_deformation_gives_its_size(faces):
    # Mouth points alternately pushed by +d and −d (3-4-5 triangle, |d| = 5 px): the mouth centroid does not
    # move, so every mouth point is 5 px off (M-LMD = 5) and 20 of 68 face points are (F-LMD = 5·20/68).
    d = np.array([3.0, 4.0])
    fake = faces.copy()
    fake[:, MOUTH] += np.where(np.arange(20)[:, None] % 2 == 0, d, -d)
    out = video_lmd(fake, faces)
    assert out["M-LMD"] == pytest.approx(5.0, rel=1e-6)
    assert out["F-LMD"] == pytest.approx(5.0 * 20 / 68, rel=1e-6)
    at_256 = video_lmd(fake, faces, pixels_at=256)                        # 128² crop pixels → 256² pixels
    assert at_256["M-LMD"] == pytest.approx(10.0, rel=1e-6)


def test_frames_without_a_face_are_skipped(faces):
    fake = faces.copy()
    fake[:, MOUTH] += 2.0 * np.where(np.arange(20)[:, None] % 2 == 0, 1.0, -1.0)
    fake[0] = np.nan                                   # no face in frame 0: skipped, not a zero distance
    out = video_lmd(fake, faces)
    assert out["lmd_frames"] == 5 and out["M-LMD"] == pytest.approx(2 * math.sqrt(2))
    none = video_lmd(np.full_like(faces, np.nan), faces)
    assert none["lmd_frames"] == 0 and math.isnan(none["M-LMD"])
