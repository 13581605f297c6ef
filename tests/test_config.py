"""params.yaml loads into typed objects; bad values fail naming the key; profiles merge."""

from __future__ import annotations

import shutil

import pytest
import yaml

from eat.config import ConfigError, apply_profile, deep_merge, flatten, load_params, parse_params, read_yaml
from eat.features.config import load_feature_params
from tests.conftest import REPO


def _with(change: dict) -> dict:
    return deep_merge(read_yaml(REPO / "params.yaml"), change)


def test_default_params_validate():
    params = load_params(REPO / "params.yaml")
    assert params.signal.hop_length * params.signal.fps == params.signal.audio_rate
    assert set(params.synth.mead.test_identities) <= {"M003", "M030", "W009", "W015"}


def test_paper_profile_holds_the_paper_values(tmp_path):
    target = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", target)
    p = apply_profile(REPO / "configs" / "paper.yaml", target)
    assert (p.signal.fps, p.signal.audio_rate, p.signal.image_size) == (25.0, 16000, 256)
    assert (p.latent.num_kp, p.latent.pca_components, p.latent.feature_channel) == (15, 32, 32)
    assert (p.a2et.encoder_layers, p.a2et.decoder_layers, p.a2et.heads, p.a2et.ffn_dim, p.a2et.d_model) == (
        6, 6, 8, 1024, 128)
    assert (p.adaptation.z_dim, p.adaptation.mapper_shared_layers, p.adaptation.mapper_unshared_layers) == (16, 4, 4)
    assert (p.optim.lr_a2et, p.optim.lr, p.optim.betas) == (1.5e-4, 2e-4, [0.5, 0.999])
    assert yaml.safe_load(target.read_text())["a2et"]["d_model"] == 128  # written back


def test_unknown_key_is_named():
    raw = read_yaml(REPO / "params.yaml")
    raw["synth"]["mead"]["fsp"] = 25
    with pytest.raises(ConfigError, match=r"synth\.mead\.fsp: unknown key"):
        parse_params(raw)


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"synth\.lrw\.frames: .*integer.*'many'"):
        parse_params(_with({"synth": {"lrw": {"frames": "many"}}}))


@pytest.mark.parametrize("change, message", [
    ({"synth": {"mead": {"test_identities": ["M005"]}}}, "both in train_identities and test_identities"),
    ({"synth": {"mead": {"train_identities": ["Bob"]}}}, "must look like M0xx or W0xx"),
    ({"synth": {"mead": {"levels": [4]}}}, "levels must be among 1, 2, 3"),
    ({"synth": {"mead": {"frame": {"width": 641, "height": 360}}}}, "must be even"),
    ({"synth": {"mead": {"emotions": ["bored"]}}}, r"synth\.mead\.emotions\.0"),
    ({"synth": {"mead": {"sentences_per_level": 9}}}, "cannot exceed neutral_sentences"),
    ({"signal": {"hop_length": 512}}, "one mel frame matches one video frame"),
    ({"a2et": {"heads": 3}}, "divisible by heads"),
    ({"latent": {"he_stage_blocks": [1, 0, 1, 1]}}, "at least one bottleneck"),
])
def test_invalid_values_fail_clearly(change, message):
    with pytest.raises(ConfigError, match=message):
        parse_params(_with(change))


def test_profile_key_must_exist():
    with pytest.raises(ConfigError, match=r"profile key synth\.nope does not exist"):
        deep_merge(read_yaml(REPO / "params.yaml"), {"synth": {"nope": 1}})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="parameter file not found"):
        load_params(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_flatten_gives_dvc_set_param_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}


@pytest.mark.parametrize("profile", ["paper", "micro"])
def test_profiles_agree_across_sections(profile):
    parse_params(_with(read_yaml(REPO / "configs" / f"{profile}.yaml")))   # raises if any two sections disagree


@pytest.mark.parametrize("change, message", [
    ({"adaptation_runs": ["eat", "nope"]}, r"adaptation_runs names \['nope'\], not in adaptation_variants"),
    ({"adaptation": {"prompt_tokens": 1}},
     r"adaptation\.prompt_tokens \(1\) must be at least a2et\.encoder_layers \(2\) and a2et\.decoder_layers \(2\): "
     r"the adaptation_runs eat, .* have deep prompts"),
    ({"adaptation": {"prompt_tokens": 19}}, r"adaptation\.prompt_tokens \(19\) \+ 2 exceeds the 20 positions of EDN"),
    ({"signal": {"window_frames": 19}}, r"signal\.window_frames \(19\) \+ 2 exceeds the 20 positions of A2ET"),
    ({"a2et": {"audio_channels": 88}},
     r"signal\.n_mels \(80\) must be a multiple of 2\^a2et\.audio_down_blocks \(8\) and at least "
     r"a2et\.audio_channels \(88\)"),
    ({"signal": {"n_mels": 24}}, r"signal\.n_mels \(24\) must be a multiple of 8 and at least 32: A2ET's JDC"),
    ({"audio_features": {"speech_window": 32}},
     r"audio_features\.speech_window \(32\) exceeds 2\^len\(a2et\.speech_channels\) = 16"),
    ({"latent": {"emotion_dim": 32}}, r"latent\.emotion_dim \(32\) must equal a2et\.d_model \(64\)"),
    ({"sync_expert": {"mel_frames": 16}}, r"sync_expert\.mel_frames \(16\) must equal sync_expert\.frames \(5\)"),
    ({"a2et_train": {"pyramid_scales": [1.0, 0.125]}},
     r"a2et_train\.pyramid_scales: the smallest scale \(0\.125\) gives 8 px images at signal\.image_size \(64\)"),
    ({"latent_train": {"pyramid_scales": [1.0, 0.125]}}, r"latent_train\.pyramid_scales: .* gives 8 px"),
    ({"signal": {"fps": 50.0, "hop_length": 320}},
     r"signal\.hop_length / \(signal\.audio_rate / 50\) = 1 logit steps per video frame must be even"),
    ({"speech_recognizer": {"win_length": 300}},
     r"speech_recognizer\.win_length \(300\) must be at least signal\.audio_rate / 50 = 320 samples"),
])
def test_sections_that_disagree_fail_naming_both_keys(change, message):
    with pytest.raises(ConfigError, match=r"sections disagree\n(  .*\n)*  " + message):
        parse_params(_with(change))


def test_deep_prompts_are_checked_only_for_the_runs_that_use_them():
    params = parse_params(_with({"adaptation": {"prompt_tokens": 1}, "adaptation_runs": ["prompts_none"]}))
    assert params.adaptation.prompt_tokens < params.a2et.encoder_layers


def test_every_disagreement_is_listed():
    with pytest.raises(ConfigError) as err:
        parse_params(_with({"latent": {"emotion_dim": 32}, "sync_expert": {"mel_frames": 16}}))
    assert str(err.value).splitlines()[1:] == [
        "  latent.emotion_dim (32) must equal a2et.d_model (64): the emotion mapper's e0 (a2et.d_model wide) drives "
        "RePos-Net's 3D EAM, built latent.emotion_dim wide",
        "  sync_expert.mel_frames (16) must equal sync_expert.frames (5): the mel has one frame per video frame "
        "(signal.hop_length = signal.audio_rate / signal.fps), and L_sync (a2et_train, adaptation_train) gives the "
        "expert the mel of the sync_expert.frames frames it renders"]


def test_the_audio_stages_check_the_speech_steps_too(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(_with({"speech_recognizer": {"win_length": 300}})))
    with pytest.raises(ConfigError, match=r"speech_recognizer\.win_length \(300\) must be at least"):
        load_feature_params(path)
