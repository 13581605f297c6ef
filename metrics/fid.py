"""FID (Table 1): Fréchet distance between Inception features of generated and ground-truth face crops.

Official protocol (evaluation_eat ``test_fid.py``; docs/paper_notes.md §7): per video, the aligned 128² crops
(:mod:`metrics.align`) of frames ``linspace(0, n, min(n, 5), endpoint=False)``
(:func:`sample_indices`), 2048-d Inception pool features, pooled over all videos of the set, then
``‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)`` (:func:`frechet_distance`; agrees with pytorch-fid's
``calculate_frechet_distance``, tested).

Feature spaces (:class:`FeatureSpace`; its ``key`` is the metric's column name):

- ``FID``: pytorch-fid's InceptionV3 with the TF-ported FID weights ``pt_inception-2015-12-05-6726825d.pth``,
  loaded by :func:`eat.scoring.inception_fid` from the weights registry (never downloaded; the error names the
  file and the folder).
  evaluation_eat itself ran torchvision's ImageNet InceptionV3 (Mixed_7c, average-pooled), so its
  numbers differ somewhat from standard FID; we use the standard network.
- ``FD_emotion_fan`` (substitute, when the Inception weights are absent): the frame features of the
  Emotion-FAN classifier this pipeline trains on MEAD faces (eat/emotion/train.py). A Fréchet distance
  in another feature space, on another scale: never reported as "FID".

Pure functions of arrays and of the networks passed in: loading a network is the caller's (metrics/ imports
nothing of eat).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

FID_FRAMES = 5              # frames sampled per video (evaluation_eat's --sample_frame_num)
BATCH = 25


def sample_indices(n_frames: int, k: int = FID_FRAMES) -> np.ndarray:
    """Indices of the ``min(n, k)`` frames of a video that enter FID, evenly spaced from frame 0."""
    return np.linspace(0, n_frames, min(n_frames, k), endpoint=False).astype(np.int64)


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) features → mean (D,) and covariance (D, D) (unbiased, as ``np.cov``)."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"Fréchet distance needs (N ≥ 2, D) features, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance of two Gaussians, ``‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁Σ₂)^½``.

    ``Tr (Σ₁Σ₂)^½`` = Σ √λ of the symmetric PSD ``Σ₁^½ Σ₂ Σ₁^½`` (same eigenvalues), from ``eigh``: exact for
    the singular covariances of small sets (fewer frames than feature dimensions), where ``sqrtm`` of the
    non-symmetric product (pytorch-fid's route) needs an ε on the diagonal.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    tr_covmean = np.sqrt(np.clip(inner, 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def feature_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between two (N, D) feature sets."""
    return frechet_distance(*statistics(a), *statistics(b))


@dataclass(frozen=True)
class FeatureSpace:
    """A frame embedder for Fréchet distances: (N, H, W, 3) uint8 RGB → (N, D) float64."""

    key: str                                     # metric column: "FID" only for the real FID Inception
    label: str                                   # what it is, for report captions
    embed_batch: Callable[[torch.Tensor], torch.Tensor]   # (B, 3, H, W) in [0, 1] → (B, D)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), BATCH):
                x = torch.from_numpy(np.ascontiguousarray(frames[i:i + BATCH])).permute(0, 3, 1, 2).float() / 255
                out.append(self.embed_batch(x).double().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0))


def emotion_fan_features(model: torch.nn.Module) -> FeatureSpace:
    """Substitute space: ResNet-18 frame features of the pipeline-trained Emotion-FAN (``frame_features``)."""
    model.eval()
    return FeatureSpace("FD_emotion_fan",
                        "substitute for FID: Fréchet distance on the pipeline-trained Emotion-FAN's frame features "
                        "(FID's Inception weights not supplied)",
                        lambda x: model.frame_features(x[:, None])[:, 0])


def video_features(space: FeatureSpace, fake: np.ndarray, real: np.ndarray,
                   valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features of the FID frames of one video pair: (T, S, S, 3) aligned crops → ((k, D), (k, D)).

    As evaluation_eat, the frames are sampled among those where both faces were found.
    """
    keep = np.flatnonzero(np.ones(len(fake), bool) if valid is None else valid)
    pick = keep[sample_indices(len(keep))]
    return space(fake[pick]), space(real[pick])
