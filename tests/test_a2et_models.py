"""A2ET and the emotional adaptation modules (Sec. 3.1.2, 3.2): official checkpoint layout, Fig. 6 parameter shares,
forward shapes, prompt semantics, EDN initialisation and the adaptation split."""

from __future__ import annotations

import pytest
import torch

from eat.config import Params, deep_merge, parse_params, read_yaml
from eat.models.a2et import PositionalEncoding, head_pose_features, source_keypoint_logits
from eat.models.adaptation import (
    ExpressionNetworks,
    adaptation_parameters,
    freeze_for_adaptation,
    parameter_shares,
)
from eat.models.keypoint_detector import KeypointDetector
from eat.models.latent import official_manifest, official_state_dict_shapes, parameter_count
from eat.models.repos_net import RePosNet
from tests.conftest import REPO

# docs/paper_notes.md §9: parameter counts of the official architecture
OFFICIAL_PARAMETERS = {"audio2kptransformer": 47_414_639, "sidetuning": 2_386_077, "emotionprompt": 10_777_600}
JDC_PARAMETERS = 5_248_067
EAM_PARAMETERS = 836 + 836 + 776_696   # 3D EAM + feature EAM + the audio encoder's decoder norm layers


def paper_params() -> Params:
    return parse_params(deep_merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "configs" / "paper.yaml")))


def default_params() -> Params:
    return parse_params(read_yaml(REPO / "params.yaml"))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: a second OpenMP thread only contends with whatever else runs on the 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def paper_modules() -> dict[str, torch.nn.Module]:
    """Generator, keypoint detector, A2ET, EDN and mapper at the paper profile, without allocating their 204 M
    parameters (names, shapes and counts do not depend on values)."""
    params = paper_params()
    with torch.device("meta"):
        expression = ExpressionNetworks.from_params(params)
        return {"generator": RePosNet(params.latent), "kp_detector": KeypointDetector(params.latent),
                **dict(expression.named_children())}


@pytest.fixture(scope="module")
def small() -> tuple[Params, ExpressionNetworks, KeypointDetector]:
    torch.manual_seed(0)
    params = default_params()
    nets = ExpressionNetworks.from_params(params).eval()   # eval: no dropout, so outputs compare exactly
    return params, nets, KeypointDetector(params.latent).eval()


def window_inputs(params: Params, batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of one A2ET window per row, in the documented layouts."""
    g = torch.Generator().manual_seed(seed)
    w, p = params.signal.window_frames, params.a2et.pose_image_size
    return {"speech": torch.randn(batch, w, params.audio_features.speech_window, 29, generator=g),
            "pose": torch.randn(batch, w, 6, generator=g) * 10,
            "pose_image": torch.rand(batch, w, 1, p, p, generator=g),
            "mel": torch.randn(batch, w, params.signal.n_mels, generator=g),
            "source": torch.rand(batch, 3, params.signal.image_size, params.signal.image_size, generator=g),
            "z": torch.randn(batch, params.adaptation.z_dim, generator=g),
            "emotion": torch.tensor([0, 4][:batch])}


def run(nets: ExpressionNetworks, kp: KeypointDetector, x: dict[str, torch.Tensor], prompts: bool = True,
        mode: str = "deep") -> torch.Tensor:
    a2et = nets.audio2kptransformer
    a2et.prompt_mode = mode
    e0, deep = nets.emotionprompt(x["z"], x["emotion"]) if prompts else (None, None)
    face = a2et.face_feature(source_keypoint_logits(kp, x["source"]), e0)
    return a2et(x["speech"], x["pose"], x["pose_image"], x["mel"], face, deep, e0)


# ---------------------------------------------------------------------------------------------------------------
# The official checkpoint's layout and the Fig. 6 shares at the paper profile


def _manifest_diff(ours: dict[str, list[int]], theirs: dict[str, list[int]]) -> str:
    lines = [f"  missing (in the checkpoint, not built): {n} {theirs[n]}" for n in sorted(set(theirs) - set(ours))]
    lines += [f"  unexpected (built, not in the checkpoint): {n} {ours[n]}" for n in sorted(set(ours) - set(theirs))]
    lines += [f"  shape of {n}: built {ours[n]}, checkpoint {theirs[n]}"
              for n in sorted(set(ours) & set(theirs)) if ours[n] != theirs[n]]
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMETERS))
def test_paper_profile_state_dict_is_the_official_checkpoint_layout(paper_modules, name):
    theirs = official_manifest()[name]
    diff = _manifest_diff(official_state_dict_shapes(paper_modules[name]), theirs)
    assert not diff, f"{name} differs from the official manifest:\n{diff}"


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMETERS))
def test_paper_profile_parameter_counts(paper_modules, name):
    assert parameter_count(paper_modules[name]) == OFFICIAL_PARAMETERS[name]


def test_paper_profile_jdc_and_eam_counts(paper_modules):
    assert parameter_count(paper_modules["audio2kptransformer"].f0_model) == JDC_PARAMETERS
    assert sum(p.numel() for p in adaptation_parameters(paper_modules)["eam"]) == EAM_PARAMETERS


def test_fig6_parameter_shares(paper_modules):
    shares = parameter_shares(paper_modules)
    assert shares.total == pytest.approx(203.51e6, abs=0.005e6)
    assert shares.adaptation == pytest.approx(13.94e6, abs=0.01e6)
    for part, paper_percent in {"mapper": 5.30, "edn": 1.17, "eam": 0.38, "adaptation": 6.85}.items():
        assert shares.percent(part) == pytest.approx(paper_percent, abs=0.3), part


# ---------------------------------------------------------------------------------------------------------------
# Default profile: shapes and the semantics of prompts, EAM hooks and EDN


def test_forward_shapes(small):
    params, nets, kp = small
    x = window_inputs(params)
    e0, prompts = nets.emotionprompt(x["z"], x["emotion"])
    assert e0.shape == (2, params.a2et.d_model)
    assert prompts.shape == (2, params.adaptation.prompt_tokens, params.a2et.d_model)
    face = nets.audio2kptransformer.face_feature(source_keypoint_logits(kp, x["source"]), e0)
    assert face.shape == (2, params.a2et.face_channels, params.a2et.audio_channels, params.a2et.audio_channels)
    assert run(nets, kp, x).shape == (2, params.latent.pca_components)
    assert nets.sidetuning(face, e0, prompts).shape == (2, params.latent.num_kp, 3)


@pytest.mark.parametrize("mode", ["none", "shallow", "deep"])
def test_every_prompt_mode_runs(small, mode):
    params, nets, kp = small
    out = run(nets, kp, window_inputs(params), mode=mode)
    assert out.shape == (2, params.latent.pca_components) and torch.isfinite(out).all()


def test_deep_prompts_change_the_output_and_none_ignores_them(small):
    params, nets, kp = small
    x = window_inputs(params)
    a2et = nets.audio2kptransformer
    e0, prompts = nets.emotionprompt(x["z"], x["emotion"])
    face = a2et.face_feature(source_keypoint_logits(kp, x["source"]), e0)

    def pe(mode: str, deep: torch.Tensor | None) -> torch.Tensor:
        a2et.prompt_mode = mode
        return a2et(x["speech"], x["pose"], x["pose_image"], x["mel"], face, deep, e0)

    with torch.no_grad():
        later = prompts.clone()
        later[:, 1] += 1.0                       # e2: the deep prompt of layer 1 only
        assert not torch.allclose(pe("deep", prompts), pe("deep", None), atol=1e-5)
        assert not torch.allclose(pe("deep", prompts), pe("deep", later), atol=1e-5)
        assert torch.allclose(pe("shallow", prompts), pe("shallow", later))   # shallow sees e1 only
        assert torch.allclose(pe("none", prompts), pe("none", None))


def test_e0_drives_the_feature_and_audio_eams(small):
    params, nets, kp = small
    x = window_inputs(params)
    a2et = nets.audio2kptransformer
    e0, _ = nets.emotionprompt(x["z"], x["emotion"])
    logits = source_keypoint_logits(kp, x["source"])
    with torch.no_grad():
        assert not torch.allclose(a2et.face_feature(logits, e0), a2et.face_feature(logits))
        face = a2et.face_feature(logits)
        assert not torch.allclose(a2et.audio_tokens(x["mel"], face, e0), a2et.audio_tokens(x["mel"], face))


def test_gradient_reaches_the_mapper_through_prompts(small):
    params, nets, kp = small
    nets.zero_grad()
    run(nets, kp, window_inputs(params)).square().mean().backward()
    heads = nets.emotionprompt.mappingnet.unshared
    assert nets.emotionprompt.mappingnet.shared[0].weight.grad.abs().sum() > 0
    assert heads[0][-1].weight.grad.abs().sum() > 0 and heads[4][-1].weight.grad.abs().sum() > 0
    assert heads[1][-1].weight.grad is None or heads[1][-1].weight.grad.abs().sum() == 0   # label 1 not in the batch


def test_mapper_picks_the_head_of_each_emotion(small):
    params, nets, _ = small
    mapper = nets.emotionprompt
    z = torch.randn(3, params.adaptation.z_dim)
    e0, prompts = mapper(z, torch.tensor([2, 2, 7]))
    expected = mapper.mappingnet.unshared[7](mapper.mappingnet.shared(z[2:]))
    assert torch.allclose(torch.cat([e0[2:], prompts[2:].flatten(1)], dim=1), expected)


def test_edn_init_from_a2et_copies_the_encoder():
    params = default_params()
    torch.manual_seed(1)
    nets = ExpressionNetworks.from_params(params)
    a2et_encoder = nets.audio2kptransformer.transformer.encoder.state_dict()
    edn = nets.sidetuning
    assert any(not torch.equal(t, a2et_encoder[n]) for n, t in edn.transformer.encoder.state_dict().items())
    copied = edn.init_from_a2et(nets.audio2kptransformer)
    for name, tensor in edn.transformer.encoder.state_dict().items():
        assert torch.equal(tensor, a2et_encoder[name]), name
    assert any(n.startswith("decodefeature_extract.1.") for n in copied)
    # the first CNN block takes the face half of the A2ET block's [audio, face] input channels
    a2et_norm = nets.audio2kptransformer.decodefeature_extract[0].conv_block_0.layers.norm.weight
    edn_norm = edn.decodefeature_extract[0].conv_block_0.layers.norm.weight
    if edn_norm.shape != a2et_norm.shape:
        assert torch.equal(edn_norm, a2et_norm[params.a2et.face_channels:])


def test_freeze_for_adaptation_trains_only_mapper_edn_and_eams():
    params = default_params()
    nets = ExpressionNetworks.from_params(params)
    modules = {"generator": RePosNet(params.latent), "kp_detector": KeypointDetector(params.latent),
               **dict(nets.named_children())}
    trainable = {id(p) for p in freeze_for_adaptation(modules)}
    for key, module in modules.items():
        for name, p in module.named_parameters():
            expected = (key in ("emotionprompt", "sidetuning") or name.startswith(("ea3d.", "fea."))
                        or (name.startswith("audioencoder.decode.") and (".norm1." in name or ".norm2." in name)))
            assert p.requires_grad == expected == (id(p) in trainable), f"{key}.{name}"


# ---------------------------------------------------------------------------------------------------------------
# Known answers of the fixed inputs


def test_pose_token_layout():
    pose = torch.tensor([[0.0, 0.0, 0.0, 0.1, -0.2, 0.3], [90.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    hp = head_pose_features(pose)
    assert hp.shape == (2, 45)
    eye = torch.eye(3).flatten()
    for block in range(4):                               # R_yaw, R_pitch, R_roll, R at zero pose
        assert torch.allclose(hp[0, 6 + 9 * block: 15 + 9 * block], eye, atol=1e-6)
    assert torch.allclose(hp[0, 42:], pose[0, 3:])
    assert torch.allclose(hp[1, :6], torch.tensor([90.0, 0, 0, torch.pi / 2, 0, 0]))
    # the official code feeds the pose-bin index expectation: 0° is bin 33 of 66 (bin i ↦ 3i − 99 degrees)
    official = head_pose_features(pose[:1], "official_bins", bins=66)
    assert torch.allclose(official[0, :3], torch.full((3,), 33.0))
    assert torch.allclose(official[0, 3:6], torch.full((3,), 33.0 / 180 * 3.14))


def test_positional_table():
    table = PositionalEncoding(8, 20).pos_table
    assert table.shape == (1, 20, 8)
    assert torch.allclose(table[0, 0], torch.tensor([0.0, 1.0] * 4))
    angle = 3.0 / 10000 ** (2 / 8)                      # position 3, channels 2 and 3
    expected = torch.tensor([3.0, 3.0, angle, angle])
    assert torch.allclose(table[0, 3, :4], torch.stack([expected[0].sin(), expected[1].cos(),
                                                        expected[2].sin(), expected[3].cos()]))
