"""Losses of the 3D latent model (Sec. 3.1.1, OSFV): known answers, invariants and the warp round trip."""

from __future__ import annotations

import hashlib
import math

import cv2
import numpy as np
import pytest
import torch

from eat.latent.losses import (
    deformation_prior_loss,
    equivariance_loss,
    face_mask,
    feature_matching_loss,
    headpose_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    keypoint_prior_loss,
    masked_l1,
    perceptual_loss,
)
from eat.latent.transforms import RandomWarp
from eat.latent.vgg import load_vgg19
from eat.models.keypoints import bins_to_degrees, make_coordinate_grid
from eat.models.pyramid import ImagePyramid
from eat.weights import REGISTRY, WeightsError

SIZE = 64


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """An empty weights folder: no ImageNet VGG19."""
    monkeypatch.setenv("EAT_WEIGHTS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def vgg():
    vgg, info = load_vgg19("substitute", seed=0)
    assert info["substitute"]
    return vgg


def smooth_image(batch: int = 2) -> torch.Tensor:
    """(B, 3, 64, 64) in [0, 1]: colour gradients and a disc, deterministic."""
    g = make_coordinate_grid((SIZE, SIZE))
    x, y = g[..., 0], g[..., 1]
    disc = ((x - 0.2) ** 2 + (y + 0.1) ** 2 < 0.2).float()
    img = torch.stack([0.5 + 0.4 * x, 0.5 + 0.4 * y, 0.3 + 0.5 * disc])
    return img.unsqueeze(0).repeat(batch, 1, 1, 1)


# --- VGG19 -----------------------------------------------------------------------------------------------


def test_imagenet_mode_without_the_file_names_it_and_the_folder(no_weights):
    with pytest.raises(WeightsError, match=rf"put vgg19-dcbb9e9d\.pth in {no_weights}/"):
        load_vgg19("imagenet")


def test_auto_mode_without_the_file_falls_back_to_a_flagged_substitute(no_weights):
    _, info = load_vgg19("auto", seed=0)
    assert info["vgg19"] == "substitute" and info["substitute"] is True
    assert "vgg19-dcbb9e9d.pth" in info["note"]


def test_substitute_is_deterministic_for_a_seed(vgg):
    x = smooth_image(1)
    again, _ = load_vgg19("substitute", seed=0)
    other, _ = load_vgg19("substitute", seed=1)
    feats, feats_again, feats_other = vgg(x), again(x), other(x)
    assert all(torch.equal(a, b) for a, b in zip(feats, feats_again, strict=True))
    assert not torch.allclose(feats[2], feats_other[2])


def test_substitute_layers_have_comparable_scale_on_noise(vgg):
    feats = vgg(torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5)))
    assert [f.shape[1:] for f in feats] == [(64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8), (512, 4, 4)]
    for f in feats:
        assert 0.7 < f.abs().mean().item() < 1.4


def test_imagenet_file_round_trip(vgg, tmp_path, monkeypatch):
    """A torchvision-style checkpoint (features.N.* plus classifier) loads through the registry."""
    state = {f"features.{i}.{k}": v for i, block in enumerate(m for s in vgg.slices for m in s)
             for k, v in block.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / REGISTRY["vgg19"].filename
    torch.save(state, path)
    entry = REGISTRY["vgg19"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(REGISTRY, "vgg19", type(entry)(entry.name, entry.filename, digest[:8], entry.source,
                                                       entry.used_by))
    monkeypatch.setenv("EAT_WEIGHTS_DIR", str(tmp_path))
    loaded, info = load_vgg19("auto")
    assert info == {"vgg19": "imagenet", "substitute": False, "note": info["note"]} and str(path) in info["note"]
    assert torch.equal(loaded.layer_scale, torch.ones(5))
    x = smooth_image(1)
    for a, b, s in zip(loaded(x), vgg(x), vgg.layer_scale, strict=True):
        torch.testing.assert_close(a, b * s)


# --- perceptual loss ----------------------------------------------------------------------------------------


def test_perceptual_loss_is_zero_for_identical_images(vgg):
    pyramid = ImagePyramid([1.0, 0.5])
    img = smooth_image()
    assert perceptual_loss(pyramid(img), pyramid(img.clone()), vgg, [10.0] * 5).item() == 0.0


def test_perceptual_loss_grows_with_noise_and_reaches_only_the_fake(vgg):
    pyramid = ImagePyramid([1.0, 0.5])
    img = smooth_image(1)
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(img.shape, generator=gen)
    values = [perceptual_loss(pyramid(img), pyramid((img + s * noise).clamp(0, 1)), vgg, [10.0] * 5).item()
              for s in (0.02, 0.08, 0.2)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), values
    fake = (img + 0.1 * noise).clamp(0, 1).requires_grad_(True)
    perceptual_loss(pyramid(img), pyramid(fake), vgg, [10.0] * 5).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


# --- GAN terms -----------------------------------------------------------------------------------------------


def disc_outputs(pred: float | list[float], feats: list[float] | None = None, scales=(1.0, 0.5)) -> dict:
    pred_t = torch.tensor(pred, dtype=torch.float32).reshape(1, 1, 1, -1)
    return {s: ([torch.full((1, 4, 2, 2), v) for v in (feats or [0.0])], pred_t) for s in scales}


def test_hinge_discriminator_loss_known_answers():
    assert hinge_discriminator_loss(disc_outputs(2.0), disc_outputs(-2.0)).item() == 0.0
    # real = fake = 0: each term is 1, two terms, two scales
    assert hinge_discriminator_loss(disc_outputs(0.0), disc_outputs(0.0)).item() == 4.0


def test_hinge_generator_loss_is_minus_the_mean_prediction():
    assert hinge_generator_loss(disc_outputs([1.0, 3.0])).item() == -4.0   # −2 per scale, two scales


def test_feature_matching_known_answers():
    real = disc_outputs(0.0, feats=[0.0, 0.0])
    assert feature_matching_loss(real, disc_outputs(0.0, feats=[0.0, 0.0]), 10.0).item() == 0.0
    fake = disc_outputs(0.0, feats=[1.0, 0.5])
    assert feature_matching_loss(real, fake, 10.0).item() == pytest.approx(2 * 10 * (1.0 + 0.5))
    assert feature_matching_loss(real, fake, [1.0, 0.0]).item() == pytest.approx(2 * 1.0)


# --- equivariance warp ---------------------------------------------------------------------------------------


def blob(centre_px: tuple[float, float], sigma: float = 1.5) -> torch.Tensor:
    v, u = torch.meshgrid(torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64),
                          indexing="ij")
    return torch.exp(-((u - centre_px[0]) ** 2 + (v - centre_px[1]) ** 2) / (2 * sigma**2))


def to_norm(px: torch.Tensor) -> torch.Tensor:
    return px * 2 / (SIZE - 1) - 1


def test_warp_image_and_warp_coordinates_agree():
    """A blob at p in the original appears at q in the warped image with T(q) ≈ p (within ~1 px)."""
    centres = [(30.0, 28.0), (22.0, 40.0), (41.0, 35.0)]
    img = torch.stack([blob(c) for c in centres]).unsqueeze(1)                     # (3, 1, 64, 64)
    warp = RandomWarp(len(centres), affine_sigma=0.1, tps_sigma=0.01, tps_points=5,
                      generator=torch.Generator().manual_seed(3))
    warped = warp.warp_image(img)[:, 0]
    grid = make_coordinate_grid((SIZE, SIZE)).double()
    q = torch.einsum("bhw,hwc->bc", warped, grid) / warped.sum((1, 2)).unsqueeze(-1)   # centroids, normalised
    p = to_norm(torch.tensor(centres, dtype=torch.float64))
    back = warp.warp_coordinates(q.unsqueeze(1))[:, 0]
    pixel = 2 / (SIZE - 1)
    assert (back - p).norm(dim=-1).max() < pixel
    assert (q - p).norm(dim=-1).max() > 2 * pixel                                 # the warp did move things


def test_zero_sigmas_give_the_identity_warp():
    warp = RandomWarp(2, affine_sigma=0.0, tps_sigma=0.0, tps_points=5, generator=torch.Generator().manual_seed(0))
    img = smooth_image()
    torch.testing.assert_close(warp.warp_image(img), img)
    pts = torch.rand(2, 7, 2) * 2 - 1
    torch.testing.assert_close(warp.warp_coordinates(pts), pts)


def test_equivariance_loss_is_zero_for_consistent_keypoints():
    warp = RandomWarp(2, affine_sigma=0.05, tps_sigma=0.005, tps_points=5, generator=torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    kp_of_warped = torch.rand(2, 15, 3, generator=gen) - 0.5
    kp_driving = torch.cat([warp.warp_coordinates(kp_of_warped[..., :2]), torch.rand(2, 15, 1, generator=gen)], -1)
    assert equivariance_loss(kp_driving, kp_of_warped, warp).item() == 0.0
    shifted = kp_driving + torch.tensor([0.1, 0.0, 0.0])
    assert equivariance_loss(shifted, kp_of_warped, warp).item() == pytest.approx(0.05)   # mean over x and y


# --- keypoint, head-pose and deformation priors ---------------------------------------------------------------


def test_keypoint_prior_zero_for_spread_keypoints_at_the_target_depth():
    xs, ys = torch.meshgrid(torch.linspace(-0.8, 0.8, 5), torch.linspace(-0.4, 0.4, 3), indexing="ij")
    kp = torch.stack([xs.flatten(), ys.flatten(), torch.full((15,), 0.33)], -1).unsqueeze(0).repeat(2, 1, 1)
    assert keypoint_prior_loss(kp, distance=0.1, depth=0.33).item() == 0.0


def test_keypoint_prior_for_coincident_keypoints():
    kp = torch.zeros(2, 15, 3)
    # 15·14 ordered pairs at distance 0 → 0.1 each; mean depth 0 → |0 − 0.33|
    assert keypoint_prior_loss(kp, distance=0.1, depth=0.33).item() == pytest.approx(15 * 14 * 0.1 + 0.33)


def test_headpose_bins_are_osfvs():
    """The bins headpose_loss reads: 66 of 3° from −99° (OSFV's headpose_pred_to_degree)."""
    assert bins_to_degrees(torch.zeros(1, 66)).item() == pytest.approx(32.5 * 3 - 99)
    assert bins_to_degrees(torch.eye(66)[[0, 33, 65]] * 100).tolist() == pytest.approx([-99.0, 0.0, 96.0])


def test_headpose_loss_zero_at_the_target_bins():
    bins = torch.tensor([[10, 33, 50], [40, 20, 33]])
    logits = [100.0 * torch.nn.functional.one_hot(bins[:, i], 66).float() for i in range(3)]
    target = bins.float() * 3 - 99
    assert headpose_loss(*logits, target).item() == pytest.approx(0.0, abs=1e-3)
    assert headpose_loss(*logits, target + torch.tensor([3.0, 0.0, -6.0])).item() == pytest.approx(9.0, abs=1e-3)


def test_deformation_prior_known_value():
    expression = torch.zeros(2, 15, 3)
    expression[0] = 0.1
    expression[1, 0] = torch.tensor([1.0, -2.0, 0.5])
    assert deformation_prior_loss(expression).item() == pytest.approx((4.5 + 3.5) / 2)


# --- face region ---------------------------------------------------------------------------------------------


def ellipse_landmarks(batch: int = 2) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, 68, endpoint=False)
    pts = np.stack([32 + 12 * np.cos(t), 30 + 16 * np.sin(t)], -1)
    return np.repeat(pts[None], batch, 0)


def test_face_mask_covers_the_hull_and_nothing_far_outside():
    lm = ellipse_landmarks()
    mask = face_mask(lm, SIZE, margin=0.0)
    assert mask.shape == (2, 1, SIZE, SIZE) and mask.dtype == np.float32
    assert set(np.unique(mask).tolist()) == {0.0, 1.0}
    inner = np.round(32 + (lm[0] - 32) * 0.95).astype(int)                       # just inside the hull
    assert all(mask[0, 0, y, x] == 1 for x, y in inner)
    v, u = np.mgrid[:SIZE, :SIZE]
    outside = ((u - 32) / 13) ** 2 + ((v - 30) / 17) ** 2 > 1
    assert mask[0, 0][outside].sum() == 0
    hull = cv2.convexHull(lm[0].astype(np.float32))
    area, perimeter = cv2.contourArea(hull), cv2.arcLength(hull, closed=True)
    assert area <= mask[0, 0].sum().item() <= area + perimeter                  # cv2 fills boundary pixels too


def test_face_mask_grows_with_margin():
    lm = ellipse_landmarks(1)
    areas = [face_mask(lm, SIZE, margin=m).sum().item() for m in (0.0, 0.1, 0.3)]
    assert areas[0] < areas[1] < areas[2]
    assert areas[1] / areas[0] == pytest.approx(1.1**2, rel=0.05)
    assert np.array_equal(face_mask(lm, SIZE, 0.1), face_mask(torch.from_numpy(lm), SIZE, 0.1))   # deterministic


def test_masked_l1_known_answers():
    real = torch.zeros(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., 2:5, 2:5] = 1
    assert masked_l1(real, real.clone(), mask).item() == 0.0
    fake = torch.full_like(real, 5.0)
    fake[..., 2:5, 2:5] = 1.0
    assert masked_l1(real, fake, mask).item() == pytest.approx(1.0)               # outside the mask ignored
    assert masked_l1(real, fake, torch.zeros_like(mask)).item() == 0.0


def test_perceptual_loss_runs_vgg19_only_to_the_deepest_weighted_slice(vgg):
    pyramid = ImagePyramid([1.0])
    real = smooth_image(1)
    fake = real.flip(-1)
    calls = []
    handle = vgg.slices[3].register_forward_hook(lambda *_: calls.append(1))
    shallow = perceptual_loss(pyramid(real), pyramid(fake), vgg, [10.0, 10.0, 10.0, 0.0, 0.0])
    assert not calls                                   # relu4_1 and relu5_1 never computed
    full = perceptual_loss(pyramid(real), pyramid(fake), vgg, [10.0, 10.0, 10.0, 10.0, 10.0])
    handle.remove()
    assert calls and full > shallow > 0
    feats = vgg(real, 3)
    assert len(feats) == 3 and all(torch.equal(a, b) for a, b in zip(feats, vgg(real)[:3], strict=False))
