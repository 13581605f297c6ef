"""PSNR and SSIM of aligned face crops (Table 1, 3, 6), with scikit-image as evaluation_eat's ``test_psnr_ssim.py``.

Official protocol: per frame pair of the 128² aligned crops (:mod:`metrics.align`),
``peak_signal_noise_ratio(gt, fake)`` and ``structural_similarity(gt, fake, multichannel=True)`` on uint8
RGB (data range 255, 7×7 uniform window), averaged over *all frames of all videos* (not per video
first): :func:`frame_scores` gives per-frame values, the aggregate in :mod:`metrics.table` weights
clips by their frame count. Identical frames give PSNR = ∞, as scikit-image does.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

DATA_RANGE = 255


def psnr(real: np.ndarray, fake: np.ndarray) -> float:
    """PSNR in dB of two (H, W, 3) uint8 images; ∞ when identical."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "divide by zero", RuntimeWarning)
        return float(peak_signal_noise_ratio(real, fake, data_range=DATA_RANGE))


def ssim(real: np.ndarray, fake: np.ndarray) -> float:
    """SSIM of two (H, W, 3) uint8 images over colour channels (skimage defaults: 7×7 uniform window)."""
    return float(structural_similarity(real, fake, channel_axis=-1, data_range=DATA_RANGE))


def frame_scores(real: np.ndarray, fake: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W, 3) uint8 paired aligned frames → per-frame PSNR (n,) and SSIM (n,) of the ``valid`` frames."""
    if real.shape != fake.shape:
        raise ValueError(f"PSNR/SSIM need paired frames of one shape, got {real.shape} and {fake.shape}")
    keep = np.flatnonzero(np.ones(len(real), bool) if valid is None else valid)
    return (np.array([psnr(real[i], fake[i]) for i in keep]), np.array([ssim(real[i], fake[i]) for i in keep]))
