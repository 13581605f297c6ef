"""FID: the Fréchet distance of known Gaussians, a set against itself, 5 frames per video, and the feature spaces
(the real FID Inception only from the weights registry; without it a substitute under another name)."""

from __future__ import annotations

import hashlib
from unittest import mock

import numpy as np
import pytest
import torch

from eat.scoring import inception_fid
from eat.weights import REGISTRY, WeightsError
from metrics.fid import (
    emotion_fan_features,
    feature_distance,
    frechet_distance,
    sample_indices,
    video_features,
)


def test_five_evenly_spaced_frames_per_video_as_evaluation_eat():
    assert sample_indices(100).tolist() == [0, 20, 40, 60, 80]
    assert sample_indices(7).tolist() == [0, 1, 2, 4, 5]
    assert sample_indices(3).tolist() == [0, 1, 2]


def test_two_gaussians_with_known_moments():
    # Diagonal covariances commute: FD = ‖μ1 − μ2‖² + Σ (√σ1 − √σ2)².
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 4.0, 1.0])
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(5.0 + 1.0 + 0.0 + 4.0)
    # A rotated pair: FD is invariant to a common rotation of both Gaussians.
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    assert frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T) == pytest.approx(10.0)


def test_a_set_against_itself_is_zero_and_samples_approach_the_analytic_value():
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, (4000, 4))
    assert feature_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    b = rng.normal(2.0, 3.0, (4000, 4))                    # FD = 4·(2²) + 4·(3 − 1)² = 32
    assert feature_distance(a, b) == pytest.approx(32.0, rel=0.05)


def test_agrees_with_pytorch_fid_and_handles_singular_covariances():
    import warnings

    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 6)), rng.normal(0.5, 2.0, size=(50, 6)) @ rng.normal(size=(6, 6))
    stats = [a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)        # pytorch-fid's sqrtm(disp=False), SciPy ≥ 1.16
        reference = calculate_frechet_distance(*stats)
    assert frechet_distance(*stats) == pytest.approx(reference, rel=1e-6)
    few = rng.normal(size=(5, 64))                               # 5 samples in 64-d: rank-4 covariance
    assert abs(feature_distance(few, few)) < 1e-6 * np.trace(np.cov(few, rowvar=False))


def test_fid_without_its_weights_names_the_file_and_the_folder(tmp_path):
    with pytest.raises(WeightsError, match=rf"put pt_inception-2015-12-05-6726825d\.pth in {tmp_path}/"):
        inception_fid(tmp_path)


def test_fid_inception_loads_a_local_weights_file_without_downloading(tmp_path, monkeypatch):
    import torchvision
    from pytorch_fid.inception import fid_inception_v3

    # A state dict of the FID architecture (random values), built without pytorch-fid's URL loader.
    with mock.patch("pytorch_fid.inception.load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(torchvision.models.Inception3, "load_state_dict", lambda self, sd: None):
        state = fid_inception_v3().state_dict()
    entry = REGISTRY["inception_fid"]
    path = tmp_path / entry.filename
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    monkeypatch.setitem(REGISTRY, "inception_fid", type(entry)(entry.name, entry.filename, digest, entry.source,
                                                                entry.used_by))
    with mock.patch("torch.hub.download_url_to_file", side_effect=AssertionError("no downloads")):
        space = inception_fid(tmp_path)
    assert space.key == "FID"
    feats = space(np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8))
    assert feats.shape == (2, 2048) and np.isfinite(feats).all()


def test_the_substitute_space_is_never_called_fid():
    from eat.config import EmotionClassifierConfig
    from eat.emotion.emotion_fan import EmotionFAN
    from tests.conftest import micro_params

    cfg = micro_params().emotion_classifier
    assert isinstance(cfg, EmotionClassifierConfig)
    torch.manual_seed(0)
    space = emotion_fan_features(EmotionFAN(cfg))
    assert space.key != "FID" and "substitute" in space.label
    videos = np.random.default_rng(0).integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    fake, real = video_features(space, videos, videos)
    assert len(fake) == 5                                   # 5 frames per video
    assert feature_distance(np.vstack([fake, real]), np.vstack([real, fake])) == pytest.approx(0.0, abs=1e-6)
