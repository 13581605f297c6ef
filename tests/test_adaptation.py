"""Emotional adaptation (eat/adapt): neutral sources and re-based targets, data fractions, only the adaptation
parameters move in a training step (every variant), and the ``train_adaptation`` stage on the tiny fixture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from eat.a2et.data import WindowSampler, a2et_table
from eat.a2et.train import RenderingParts, build_a2et, load_clips, save_model
from eat.adapt.control import rises_with_intensity
from eat.adapt.data import adaptation_clips, fraction_mask, neutral_sources
from eat.adapt.generate import emotion_codes, emotional_video, intensity_mix, latent_code
from eat.adapt.heldout import balanced_subset
from eat.adapt.train import RUN_NAME, Trainer, adaptation_losses, loss_weights
from eat.config import EMOTIONS, AdaptationVariant, deep_merge, parse_params, read_yaml, write_yaml_atomic
from eat.emotion.emotion_fan import EmotionFAN
from eat.latent.pca import ExpressionBasis
from eat.ray_train import read_state
from eat.render_clip import emotional_predictor, predict_keypoints, relative_keypoints
from tests.a2et_fixture import a2et_overlay, write_a2et_fixture
from tests.conftest import REPO
from tests.latent_fixture import fixture_overlay
from tests.processes import RAY_TRAIN_FAST_POLL


def _table(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame([{"uid": f"{i}_{e}_{s}", "identity": i, "emotion": e, "sentence": s} for i, e, s in rows])


def test_neutral_sources_prefer_the_same_sentence_then_the_identity():
    table = _table([("A", "neutral", "001"), ("A", "neutral", "002"), ("A", "happy", "002"), ("A", "sad", "009"),
                    ("B", "angry", "001")])
    assert neutral_sources(table).tolist() == [0, 1, 1, 0, -1]


def test_intensity_control_needs_a_real_rise_not_noise():
    assert rises_with_intensity([0.10, 0.20, 0.35, 0.50, 0.80])
    assert rises_with_intensity([0.10, 0.2, 0.1995, 0.3, 0.4])                  # a 5e-4 dip is noise
    assert not rises_with_intensity([0.0424] * 5)                               # flat: not controlled
    assert not rises_with_intensity([0.0424, 0.0424, 0.04241, 0.04241, 0.04241])  # rises by 1e-5 only
    assert not rises_with_intensity([0.1, 0.3, 0.2, 0.4, 0.5])                 # falls on the way
    assert not rises_with_intensity([0.5, 0.4, 0.3, 0.2, 0.1])


def test_the_scored_sample_deals_its_clips_evenly_over_the_emotions():
    table = _table([(i, e, f"{s:03d}") for i in ("A", "B") for e in ("angry", "happy", "neutral", "sad")
                    for s in range(3)])
    picked = balanced_subset(table, 9)                      # 9 = 3 + 2 + 2 + 2, angry (first in EMOTIONS) the extra
    assert picked.emotion.value_counts().to_dict() == {"angry": 3, "happy": 2, "neutral": 2, "sad": 2}
    assert picked.uid.is_monotonic_increasing and set(picked.identity) == {"A", "B"}
    assert picked.uid.tolist() == balanced_subset(table.sample(frac=1, random_state=0), 9).uid.tolist()
    assert len(balanced_subset(table, 0)) == len(balanced_subset(table, 99)) == len(table)


def test_fraction_mask_keeps_a_share_of_every_emotion_deterministically():
    table = _table([("A", e, f"{s:03d}") for e in ("happy", "sad", "neutral") for s in range(8)])
    mask = fraction_mask(table, 0.25, seed=3)
    assert mask.sum() == 6 and all(mask[table.emotion == e].sum() == 2 for e in ("happy", "sad", "neutral"))
    assert np.array_equal(mask, fraction_mask(table, 0.25, seed=3))
    assert fraction_mask(table, 1.0, seed=3).all()


@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("adaptation")
    merged = deep_merge(deep_merge(deep_merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "configs" /
                                                                                         "micro.yaml")),
                                   fixture_overlay()), a2et_overlay())
    write_yaml_atomic(root / "params.yaml", merged)
    params = parse_params(merged)
    paths = write_a2et_fixture(root, params)
    torch.manual_seed(2)
    a2et = root / "a2et" / "model.pt"
    a2et.parent.mkdir()
    save_model({"a2et": build_a2et(params).state_dict(), "step": 0}, params, "full", a2et)
    classifier = root / "emotion" / "model.pt"
    classifier.parent.mkdir()
    torch.save({"emotions": list(EMOTIONS), "config": params.emotion_classifier.model_dump(),
                "state_dict": EmotionFAN(params.emotion_classifier).state_dict()}, classifier)
    return {"emotion_classifier": classifier, "root": root, "params_file": root / "params.yaml", "params": params,
            "a2et": a2et, **paths}


def test_targets_are_rebased_on_the_neutral_source(stage_inputs):
    params = stage_inputs["params"]
    basis = ExpressionBasis.load(stage_inputs["pca"], params.latent.pca_components)
    table = a2et_table(stage_inputs["latent_table"], stage_inputs["audio_table"])
    table = table[table.split == "train"].reset_index(drop=True)
    clips = load_clips(params, table, basis, str(stage_inputs["latent_model"]), with_frames=True)
    adapted, labels, left_out = adaptation_clips(table, clips)
    assert not left_out and len(adapted) == len(clips)
    for clip, original in zip(adapted, clips, strict=True):
        partner = clips[table.index[(table.identity == table.identity[clips.index(original)]) &
                                    (table.emotion == "neutral")][0]]
        assert clip.source is partner.source
        own_kc = original.source.canonical @ original.rotation.transpose(0, 2, 1)
        new_kc = partner.source.canonical @ original.rotation.transpose(0, 2, 1)
        assert np.allclose(clip.keypoints - new_kc, original.keypoints - own_kc, atol=1e-5)   # same T + E
    assert sorted(set(labels.tolist())) == [0, 5]                                               # angry, neutral


@pytest.mark.parametrize("name", ["eat", "prompt_only", "prompts_none", "loss_per"])
def test_a_step_moves_only_the_variants_adaptation_parameters(stage_inputs, name):
    params = stage_inputs["params"]
    variant: AdaptationVariant = params.adaptation_variants[name]
    basis = ExpressionBasis.load(stage_inputs["pca"], params.latent.pca_components)
    table = a2et_table(stage_inputs["latent_table"], stage_inputs["audio_table"])
    table = table[table.split == "train"].reset_index(drop=True)
    clips, labels, _ = adaptation_clips(table, load_clips(params, table, basis, str(stage_inputs["latent_model"]),
                                                          with_frames=True))
    trainer = Trainer(params, variant, basis, str(stage_inputs["latent_model"]), str(stage_inputs["a2et"]), 0, "cpu")
    parts = RenderingParts(params, str(stage_inputs["latent_model"]), str(stage_inputs["sync_expert"]), "cpu")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainable = {id(p) for p in trainer.model.trainable()}
    names = {n for n, p in trainer.model.named_parameters() if id(p) in trainable}
    assert any(n.startswith("emotionprompt.") for n in names)
    assert any(n.startswith("sidetuning.") for n in names) == variant.edn
    assert any(n.startswith("generator.ea3d.") for n in names) == variant.eam
    assert all(n.startswith(("emotionprompt.", "sidetuning.", "generator.ea3d.", "audio2kptransformer.fea.",
                             "audio2kptransformer.audioencoder.decode.")) for n in names)

    trainer.model.train()
    terms = adaptation_losses(params, trainer.model, loss_weights(params, variant), clips, labels,
                              WindowSampler(clips, params.sync_expert.frames, 0), parts, 0, 0, 1, torch.device("cpu"))
    expected = {"latent", "face_l1", "perceptual", "sync"} if len(variant.losses) == 4 else {"perceptual"}
    assert set(terms) == expected
    trainer.opt.zero_grad()
    sum(terms.values()).backward()
    trainer.opt.step()
    after = trainer.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= names, sorted(changed - names)[:5]       # frozen tensors (and BN stats) unchanged
    assert any(k.startswith("emotionprompt.") for k in changed)


def _run_stage(stage_inputs, ray_head, *variants: str) -> subprocess.CompletedProcess:
    root = stage_inputs["root"]
    args = [sys.executable, "-m", "stages.train_adaptation", "--variants", *variants, "--params",
            str(stage_inputs["params_file"]), "--latent-table", str(stage_inputs["latent_table"]),
            "--audio-table", str(stage_inputs["audio_table"]), "--latent-model", str(stage_inputs["latent_model"]),
            "--pca", str(stage_inputs["pca"]), "--a2et", str(stage_inputs["a2et"]),
            "--sync-expert", str(stage_inputs["sync_expert"]),
            "--emotion-classifier", str(stage_inputs["emotion_classifier"]), "--out", str(root / "models"),
            "--checkpoints", str(root / "checkpoints"), "--reports", str(root / "reports")]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO), **RAY_TRAIN_FAST_POLL,
           **ray_head.env}                                                      # the session's Ray head
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow(seconds=75)
def test_stage_trains_the_variants_and_keeps_fig5_snapshots(stage_inputs, ray_head):
    """Both variants in one Ray Train run; then, with the run's last checkpoint gone (as if killed before it), a
    rerun resumes from the one before (inside or after the first variant) and writes the same models bit for bit."""
    root = stage_inputs["root"]
    _run_stage(stage_inputs, ray_head, "eat", "prompt_only")
    steps = stage_inputs["params"].adaptation_train.steps
    summary = json.loads((root / "reports.json").read_text())
    assert set(summary) == {"eat", "prompt_only"}
    assert summary["prompt_only"]["trainable_parameters"] < summary["eat"]["trainable_parameters"]
    metrics = json.loads((root / "reports" / "eat" / "metrics.json").read_text())
    assert metrics["steps"] == steps and metrics["train_clips"] == 4 and metrics["trainable_parameters"] > 0
    snapshots = torch.load(root / "models" / "eat" / "snapshots.pt", weights_only=True)
    assert [s["step"] for s in snapshots] == [0, steps]
    assert not all(torch.equal(snapshots[0]["adaptation"][k], snapshots[-1]["adaptation"][k])
                   for k in snapshots[0]["adaptation"])
    assert len(pd.read_csv(root / "reports" / "eat" / "train_log.csv")) == steps
    curve = pd.read_csv(root / "reports" / "eat" / "curve.csv")
    assert curve.step.tolist() == [0, steps] and curve.acc_emo.between(0, 1).all()
    assert pd.read_csv(root / "reports" / "prompt_only" / "curve.csv").empty       # no Fig. 5 curve for it
    assert torch.load(root / "models" / "prompt_only" / "snapshots.pt", weights_only=True) == []

    first = {name: torch.load(root / "models" / name / "model.pt", weights_only=True)["adaptation"]
             for name in ("eat", "prompt_only")}
    checkpoints = sorted(p for p in (root / "checkpoints" / RUN_NAME).glob("checkpoint_*") if p.is_dir())
    kept = [read_state(p)["step"] for p in checkpoints]                          # run-wide steps
    assert kept[-1] == 2 * steps and kept[-2] < 2 * steps, kept
    shutil.rmtree(checkpoints[-1])
    proc = _run_stage(stage_inputs, ray_head, "eat", "prompt_only")
    assert f"(step {kept[-2]} of {2 * steps})" in proc.stdout
    for name, tensors in first.items():
        again = torch.load(root / "models" / name / "model.pt", weights_only=True)["adaptation"]
        assert all(torch.equal(again[k], tensors[k]) for k in tensors), name


def _model(stage_inputs, name: str = "eat"):
    params = stage_inputs["params"]
    basis = ExpressionBasis.load(stage_inputs["pca"], params.latent.pca_components)
    trainer = Trainer(params, params.adaptation_variants[name], basis, str(stage_inputs["latent_model"]),
                      str(stage_inputs["a2et"]), 0, "cpu")
    return trainer.model.eval(), basis


def test_emotion_codes_mix_linearly_and_intensity_scales_from_neutral(stage_inputs):
    model, _ = _model(stage_inputs)
    z = latent_code(model, 7)
    happy, neutral = emotion_codes(model, {"happy": 1.0}, z), emotion_codes(model, {"neutral": 1.0}, z)
    mixed = emotion_codes(model, intensity_mix("happy", 0.3), z)
    for h, n, m in zip(happy, neutral, mixed, strict=True):
        assert torch.allclose(m, 0.3 * h + 0.7 * n, atol=1e-6)
    assert all(torch.allclose(a, b) for a, b in zip(emotion_codes(model, intensity_mix("happy", 0.0), z), neutral,
                                                    strict=True))
    assert intensity_mix("happy", 1.0) == {"happy": 1.0}
    with pytest.raises(ValueError, match="angry, contempt"):
        emotion_codes(model, {"joyful": 1.0}, z)
    with pytest.raises(ValueError, match="outside"):
        intensity_mix("sad", 1.5)


def test_relative_keypoints_start_from_the_sources_expression(stage_inputs):
    model, basis = _model(stage_inputs)
    params = stage_inputs["params"]
    table = a2et_table(stage_inputs["latent_table"], stage_inputs["audio_table"])
    clip = load_clips(params, table.iloc[:1], basis, str(stage_inputs["latent_model"]), with_frames=True)[0]
    codes = emotion_codes(model, {"neutral": 1.0}, latent_code(model, 0))
    half = params.signal.window_frames // 2
    _, absolute = predict_keypoints(emotional_predictor(model, codes), clip, half)
    rel = relative_keypoints(absolute, clip, basis)
    source_e = torch.from_numpy(basis.decode(clip.source.pe[None]))
    rigid = torch.from_numpy(clip.source.canonical @ clip.rotation[0].T + clip.translation[0])
    assert torch.allclose(rel[0], rigid + source_e[0], atol=1e-5)
    assert torch.allclose(rel - rel[:1], absolute - absolute[:1], atol=1e-5)     # same motion as absolute
    video = emotional_video(model, clip, codes, half, batch_size=3)
    assert video.shape == clip.frames.shape and video.dtype == np.uint8
