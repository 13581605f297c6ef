"""The 3D latent model (Sec. 3.1.1): official checkpoint layout, forward shapes, Eq. 1 and keypoint geometry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from eat.config import LatentConfig, deep_merge, parse_params, read_yaml
from eat.models.blocks import ResBottleneck
from eat.models.dense_motion import sparse_motions
from eat.models.eam import EAM
from eat.models.head_pose import HeadPoseExpressionEstimator
from eat.models.keypoints import (
    HeadPose,
    bins_to_degrees,
    compose_keypoints,
    degrees_to_bins,
    heatmap_to_keypoints,
    keypoints_to_gaussian,
    make_coordinate_grid,
    rotation_matrix,
)
from eat.models.latent import LatentNetworks, official_manifest, official_state_dict_shapes, parameter_count
from tests.conftest import REPO

# docs/paper_notes.md §9: parameter counts of the official architecture
OFFICIAL_PARAMETERS = {"generator": 100_989_012, "kp_detector": 41_940_047, "he_estimator": 30_254_838}


def paper_config() -> LatentConfig:
    return parse_params(deep_merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "configs" / "paper.yaml"))).latent


def default_config() -> LatentConfig:
    return parse_params(read_yaml(REPO / "params.yaml")).latent


@pytest.fixture(scope="module")
def paper_networks() -> LatentNetworks:
    # names and shapes do not depend on values: build the 170 M parameters without allocating them
    with torch.device("meta"):
        return LatentNetworks.from_config(paper_config())


@pytest.fixture(scope="module")
def small() -> tuple[LatentConfig, LatentNetworks]:
    torch.manual_seed(0)
    cfg = default_config()
    return cfg, LatentNetworks.from_config(cfg)


def images(batch: int = 2, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------------------
# The official checkpoint's layout at the paper profile


def _manifest_diff(ours: dict[str, list[int]], theirs: dict[str, list[int]]) -> str:
    lines = [f"  missing (in the checkpoint, not built): {n} {theirs[n]}" for n in sorted(set(theirs) - set(ours))]
    lines += [f"  unexpected (built, not in the checkpoint): {n} {ours[n]}" for n in sorted(set(ours) - set(theirs))]
    lines += [f"  shape of {n}: built {ours[n]}, checkpoint {theirs[n]}"
              for n in sorted(set(ours) & set(theirs)) if ours[n] != theirs[n]]
    return "\n".join(lines)


@pytest.mark.parametrize("name", ["generator", "kp_detector", "he_estimator"])
def test_paper_profile_state_dict_is_the_official_checkpoint_layout(paper_networks, name):
    theirs = official_manifest()[name]
    ours = official_state_dict_shapes(getattr(paper_networks, name))
    diff = _manifest_diff(ours, theirs)
    assert not diff, f"{name} differs from the official manifest:\n{diff}"


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMETERS))
def test_paper_profile_parameter_counts(paper_networks, name):
    assert parameter_count(getattr(paper_networks, name)) == OFFICIAL_PARAMETERS[name]


def test_generator_3d_eam_has_the_official_836_parameters(paper_networks):
    assert parameter_count(paper_networks.generator.ea3d) == 836


def test_paper_profile_shapes_at_256(paper_networks):
    # meta tensors carry shapes through every layer without computing anything
    with torch.device("meta"):
        frame, e0 = torch.empty(1, 3, 256, 256), torch.empty(1, 128)
        kp = paper_networks.kp_detector(frame)
        volume = paper_networks.generator.appearance(frame)
        out = paper_networks.generator.render(volume, kp, kp, e0)
    assert kp.shape == (1, 15, 3)
    assert volume.shape == (1, 32, 16, 64, 64)        # docs/paper_notes.md §5: the 3D EAM acts on (B, 32, 16, 64, 64)
    assert out["prediction"].shape == (1, 3, 256, 256)
    assert out["occlusion_map"].shape == (1, 1, 64, 64)


# ---------------------------------------------------------------------------------------------------------------
# Forward passes at the default (small) profile


def test_forward_shapes_at_the_default_profile(small):
    cfg, nets = small
    source, driving = images(seed=1), images(seed=2)
    k, d = cfg.num_kp, cfg.reshape_depth
    h = 64 // 2**cfg.gen_down_blocks

    canonical = nets.kp_detector(source)
    assert canonical.shape == (2, k, 3) and canonical.abs().max() <= 1

    pose = nets.he_estimator(driving)
    assert pose.yaw.shape == pose.pitch.shape == pose.roll.shape == (2, cfg.pose_bins)
    assert pose.translation.shape == (2, 3) and pose.expression.shape == (2, k, 3)

    volume = nets.generator.appearance(source)
    assert volume.shape == (2, cfg.feature_channel, d, h, h)

    kp_source = nets.he_estimator(source).keypoints(canonical)
    out = nets.generator(source, kp_source, pose.keypoints(canonical))
    assert out["prediction"].shape == (2, 3, 64, 64)
    assert out["occlusion_map"].shape == (2, 1, h, h)
    assert out["mask"].shape == (2, k + 1, d, h, h)
    assert out["deformation"].shape == (2, d, h, h, 3)
    for key, value in out.items():
        assert torch.isfinite(value).all(), key
    assert 0 <= out["prediction"].min() and out["prediction"].max() <= 1
    torch.testing.assert_close(out["mask"].sum(1), torch.ones(2, d, h, h))

    scores = nets.discriminator(out["prediction"])
    assert list(scores) == cfg.disc_scales
    features, prediction = scores[1.0]
    assert len(features) == cfg.disc_num_blocks and prediction.shape[:2] == (2, 1)


def test_gradient_reaches_the_generator_input_layer_and_the_keypoint_detector(small):
    _, nets = small
    nets.zero_grad()
    source, driving = images(seed=3), images(seed=4)
    out = nets.generator(source, nets.kp_detector(source), nets.kp_detector(driving))
    out["prediction"].mean().backward()
    for name, param in [("generator.first.conv", nets.generator.first.conv.weight),
                        ("kp_detector.kp", nets.kp_detector.kp.weight),
                        ("kp_detector.predictor.down_blocks.down0",
                         nets.kp_detector.predictor.down_blocks.down0.conv.weight)]:
        assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient reaches {name}"
    nets.zero_grad()


def test_render_reuses_the_source_volume_and_eam_is_identity_without_emotion(small):
    cfg, nets = small
    nets.eval()
    try:
        with torch.no_grad():
            source = images(seed=5)
            kp = nets.kp_detector(source)
            full = nets.generator(source, kp, kp.flip(1))
            volume = nets.generator.appearance(source)
            reused = nets.generator.render(volume, kp, kp.flip(1))
            emotional = nets.generator.render(volume, kp, kp.flip(1), emotion=torch.randn(2, cfg.emotion_dim))
    finally:
        nets.train()
    torch.testing.assert_close(full["prediction"], reused["prediction"])
    assert not torch.allclose(emotional["prediction"], reused["prediction"])


def test_estimator_depth_follows_he_stage_blocks(small):
    """``he_stage_blocks`` sets the bottlenecks per trunk stage (official 3, 4, 6, 3, the first of stages 2-4
    strided); the heads and their outputs do not change with the depth."""
    cfg, nets = small
    shallow = HeadPoseExpressionEstimator(cfg.model_copy(update={"he_stage_blocks": [1, 1, 1, 2]}))
    blocks = lambda net: sum(isinstance(m, ResBottleneck) for m in net.modules())   # noqa: E731
    assert blocks(nets.he_estimator) == sum(cfg.he_stage_blocks) and blocks(shallow) == 5
    pose = shallow(images(seed=3))
    assert pose.yaw.shape == (2, cfg.pose_bins) and pose.expression.shape == (2, cfg.num_kp, 3)


def test_eam_modulates_channelwise_in_2d_and_3d():
    eam = EAM(channels=16, emotion_dim=8)
    e0 = torch.randn(3, 8)
    gamma, beta = torch.tanh(eam.fc(e0)).chunk(2, dim=1)
    for x in (torch.randn(3, 16, 5, 5), torch.randn(3, 16, 2, 5, 5)):
        shape = (3, 16) + (1,) * (x.dim() - 2)
        torch.testing.assert_close(eam(x, e0), x * (1 + gamma.view(shape)) + beta.view(shape))
        assert eam(x) is x


# ---------------------------------------------------------------------------------------------------------------
# Eq. 1 and the pose bins


def test_eq1_zero_pose_gives_the_canonical_keypoints():
    canonical = torch.randn(2, 15, 3)
    zeros = torch.zeros(2)
    rotation = rotation_matrix(zeros, zeros, zeros)
    torch.testing.assert_close(rotation, torch.eye(3).expand(2, 3, 3))
    torch.testing.assert_close(compose_keypoints(canonical, rotation, torch.zeros(2, 3), torch.zeros(2, 15, 3)),
                               canonical)


def test_eq1_yaw_of_90_degrees_turns_x_into_minus_z():
    rotation = rotation_matrix(torch.tensor([90.0]), torch.zeros(1), torch.zeros(1))
    x_axis = torch.tensor([[[1.0, 0.0, 0.0]]])
    rotated = compose_keypoints(x_axis, rotation, torch.zeros(1, 3), torch.zeros(1, 1, 3))
    torch.testing.assert_close(rotated, torch.tensor([[[0.0, 0.0, -1.0]]]), atol=1e-6, rtol=0)


def test_eq1_rotation_is_proper_and_translation_and_expression_add():
    g = torch.Generator().manual_seed(0)
    yaw, pitch, roll = (torch.empty(8).uniform_(-90, 90, generator=g) for _ in range(3))
    rotation = rotation_matrix(yaw, pitch, roll)
    torch.testing.assert_close(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(8, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(8))
    # OSFV's order: R = R_pitch(x) · R_yaw(y) · R_roll(z)
    zero = torch.zeros(8)
    torch.testing.assert_close(rotation, rotation_matrix(zero, pitch, zero) @ rotation_matrix(yaw, zero, zero)
                               @ rotation_matrix(zero, zero, roll))

    canonical, t, e = torch.randn(8, 15, 3), torch.randn(8, 3), torch.randn(8, 15, 3)
    rotated = compose_keypoints(canonical, rotation, torch.zeros(8, 3), torch.zeros(8, 15, 3))
    torch.testing.assert_close(rotated, torch.einsum("bij,bkj->bki", rotation, canonical))
    torch.testing.assert_close(compose_keypoints(canonical, rotation, t, e), rotated + t[:, None] + e)


def test_head_pose_keypoints_follow_eq1():
    bins = 66
    logits = torch.full((1, bins), -1e4)
    yaw, pitch, roll = (logits.clone().index_fill_(1, torch.tensor([i]), 0.0) for i in (43, 33, 30))
    pose = HeadPose(yaw, pitch, roll, torch.tensor([[0.1, 0.2, 0.3]]), torch.zeros(1, 15, 3))
    torch.testing.assert_close(torch.stack(pose.degrees()), torch.tensor([[30.0], [0.0], [-9.0]]))
    canonical = torch.randn(1, 15, 3)
    expected = compose_keypoints(canonical, rotation_matrix(*pose.degrees()), pose.translation, pose.expression)
    torch.testing.assert_close(pose.keypoints(canonical), expected)


@pytest.mark.parametrize("index", [0, 1, 33, 65])
def test_one_hot_bin_gives_its_angle(index):
    logits = torch.zeros(1, 66)
    logits[0, index] = 1e4
    assert bins_to_degrees(logits).item() == pytest.approx(3 * index - 99, abs=1e-3)
    assert degrees_to_bins(torch.tensor([3.0 * index - 99]), 66).item() == index


def test_uniform_bins_give_the_mean_angle():
    assert bins_to_degrees(torch.zeros(1, 66)).item() == pytest.approx(-1.5, abs=1e-4)   # mean of 3·i − 99


# ---------------------------------------------------------------------------------------------------------------
# Keypoints from heatmaps, Gaussians, sparse motions


def _blob_heatmap(kp: torch.Tensor, spatial: tuple[int, ...], variance: float = 0.004) -> torch.Tensor:
    heat = keypoints_to_gaussian(kp, spatial, variance)
    return heat / heat.flatten(2).sum(-1).view(*heat.shape[:2], *([1] * len(spatial)))


def test_keypoints_of_a_gaussian_blob_are_its_centre():
    kp = torch.tensor([[[0.3, -0.5, 0.2], [-0.6, 0.1, -0.4]]])
    torch.testing.assert_close(heatmap_to_keypoints(_blob_heatmap(kp, (16, 48, 48))), kp, atol=1e-3, rtol=0)


def test_keypoint_extraction_is_equivariant_to_an_affine_warp():
    # blobs at (x, y) per keypoint; the warp samples the original at A·q + t for each output point q,
    # so a blob at p reappears at A⁻¹(p − t)
    kp = torch.tensor([[[0.2, -0.3, 0.1], [-0.35, 0.25, -0.2], [0.1, 0.4, 0.5]]])
    heat = _blob_heatmap(kp, (8, 64, 64))
    angle = math.radians(12)
    a = 0.9 * torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    t = torch.tensor([0.08, -0.05])
    theta = torch.zeros(1, 3, 4)
    theta[0, :2, :2], theta[0, :2, 3], theta[0, 2, 2] = a, t, 1.0          # depth is left alone
    grid = F.affine_grid(theta.expand(3, -1, -1), [3, 1, 8, 64, 64], align_corners=True)   # one per keypoint map
    warped = F.grid_sample(heat.transpose(0, 1), grid, align_corners=True).transpose(0, 1)
    warped = warped / warped.flatten(2).sum(-1)[..., None, None, None]

    before, after = heatmap_to_keypoints(heat)[0], heatmap_to_keypoints(warped)[0]
    expected_xy = (before[:, :2] - t) @ torch.linalg.inv(a).T
    assert (after[:, :2] - expected_xy).abs().max() < 1e-2
    assert (after[:, 2] - before[:, 2]).abs().max() < 1e-2


def test_coordinate_grid_orders_axes_x_y_z():
    grid = make_coordinate_grid((2, 3, 5))
    assert grid.shape == (2, 3, 5, 3)
    torch.testing.assert_close(grid[0, 0, :, 0], torch.linspace(-1, 1, 5))     # x along width
    torch.testing.assert_close(grid[0, :, 0, 1], torch.linspace(-1, 1, 3))     # y along height
    torch.testing.assert_close(grid[:, 0, 0, 2], torch.linspace(-1, 1, 2))     # z along depth


def test_sparse_motions_are_identity_when_nothing_moves_and_translate_otherwise():
    kp = torch.rand(2, 15, 3) * 2 - 1
    identity = make_coordinate_grid((4, 6, 6))
    still = sparse_motions(kp, kp, (4, 6, 6))
    assert still.shape == (2, 16, 4, 6, 6, 3)
    torch.testing.assert_close(still, identity.expand_as(still))

    shift = torch.tensor([0.1, -0.2, 0.05])
    moved = sparse_motions(kp, kp + shift, (4, 6, 6))     # driving = source + shift: sample the source at z − shift
    torch.testing.assert_close(moved[:, 0], identity.expand(2, -1, -1, -1, -1))
    torch.testing.assert_close(moved[:, 1:], (identity - shift).expand(2, 15, -1, -1, -1, -1))


def test_generator_deformation_is_the_identity_when_driving_equals_source(small):
    cfg, nets = small
    source = images(seed=6)
    with torch.no_grad():
        kp = nets.kp_detector(source)
        out = nets.generator(source, kp, kp)
    h = 64 // 2**cfg.gen_down_blocks
    identity = make_coordinate_grid((cfg.reshape_depth, h, h))
    torch.testing.assert_close(out["deformation"], identity.expand_as(out["deformation"]), atol=1e-6, rtol=0)


def test_one_estimator_call_splits_back_into_the_poses_of_each_group():
    from eat.models.keypoints import HeadPose

    pose = HeadPose(*(torch.arange(6 * n, dtype=torch.float32).view(6, n) for n in (4, 4, 4, 3)),
                    expression=torch.zeros(6, 2, 3))
    first, second, third = pose.split([2, 2, 2])
    assert torch.equal(second.yaw, pose.yaw[2:4]) and torch.equal(third.translation, pose.translation[4:])
    assert first.expression.shape == (2, 2, 3)


def test_reenact_reports_whether_the_driving_frame_reaches_the_render():
    """``reenact``'s no-motion render and identity-flow weight tell a renderer that follows the driving keypoints
    from one whose dense motion has collapsed onto copying the source (the held-out metrics' motion check)."""
    from eat.latent.evaluate import psnr, reenact

    torch.manual_seed(0)
    nets = LatentNetworks.from_config(default_config()).eval()
    source, driving = images(1, seed=7), images(3, seed=8)
    with torch.no_grad():                        # an untrained estimator gives every image about the same keypoints:
        nets.he_estimator.fc_t.weight.mul_(1000)  # make the translation t follow the image
    out = reenact(nets, source, driving)
    assert out["prediction"].shape == (3, 3, 64, 64) and out["still"].shape == (1, 3, 64, 64)
    assert ((0 < out["identity_weight"]) & (out["identity_weight"] < 0.5)).all()
    assert psnr(reenact(nets, source, source)["prediction"], out["still"]).item() >= 99   # no motion: the same render
    assert psnr(out["prediction"], out["still"].expand_as(driving)).max() < 50            # keypoints moved: it differs

    with torch.no_grad():                        # every voxel takes the identity flow: only the occlusion map still
        nets.generator.dense_motion_network.mask.bias[0] = 1e4   # sees the driving keypoints
    collapsed = reenact(nets, source, driving)
    assert collapsed["identity_weight"].min() > 0.999
    moved = psnr(out["prediction"], out["still"].expand_as(driving))
    assert psnr(collapsed["prediction"], collapsed["still"].expand_as(driving)).min() > moved.max() + 15
