"""PSNR and SSIM: identical frames give ∞ and 1, a known error gives a known PSNR, faceless frames are skipped."""

from __future__ import annotations

import math

import numpy as np
import pytest

from metrics.image import frame_scores, psnr, ssim


@pytest.fixture
def frames() -> np.ndarray:
    return np.random.default_rng(0).integers(20, 230, (3, 32, 32, 3), dtype=np.uint8)


def test_identical_frames_give_infinite_psnr_and_unit_ssim(frames):
    assert psnr(frames[0], frames[0]) == math.inf
    assert ssim(frames[0], frames[0]) == pytest.approx(1.0)


def test_a_uniform_error_of_5_gives_20_log10_51_db(frames):
    # MSE = 25 → PSNR = 10 log10(255² / 25) = 20 log10(51) ≈ 34.151 dB
    assert psnr(frames[0], frames[0] + 5) == pytest.approx(20 * math.log10(51), abs=1e-9)


def test_known_gaussian_noise_gives_its_psnr(frames):
    noise = np.random.default_rng(1).choice([-10, 10], frames[0].shape)        # MSE exactly 100
    assert psnr(frames[0], (frames[0] + noise).astype(np.uint8)) == pytest.approx(10 * math.log10(255 ** 2 / 100))
    assert ssim(frames[0], (frames[0] + noise).astype(np.uint8)) < 1


def test_frame_scores_keep_only_valid_frames(frames):
    fake = frames.copy()
    fake[1] += 5
    p, s = frame_scores(frames, fake, np.array([False, True, True]))
    assert p.tolist() == pytest.approx([20 * math.log10(51), math.inf])
    assert s[1] == pytest.approx(1.0) and s[0] < 1
    with pytest.raises(ValueError, match="paired frames"):
        frame_scores(frames, frames[:2])
