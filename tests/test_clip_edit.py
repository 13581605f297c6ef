"""Zero-shot text editing (eat/adapt/clip_edit.py) with a tiny randomly initialised CLIP of open_clip's architecture:
the loss path end to end on the tiny adapted model, only the mapper and EAMs move, the text similarity rises; CLIP
weights come only from local files (no network), and a missing or foreign file is reported with the fix."""

from __future__ import annotations

import functools
import socket
import warnings

import pytest
import torch

from eat.a2et.data import WindowSampler, a2et_table
from eat.a2et.train import build_a2et, load_clips, save_model
from eat.adapt.checkpoint import build_model
from eat.adapt.clip_edit import (
    CLIP_ARCHITECTURE,
    ClipEditConfig,
    ClipScorer,
    ClipWeightsError,
    build_clip,
    clip_architecture,
    clip_edit_losses,
    clip_status,
    edit,
    edit_batch,
    editable_parameters,
    load_clip,
)
from eat.adapt.data import adaptation_clips
from eat.config import deep_merge, parse_params, read_yaml
from eat.latent.pca import ExpressionBasis
from eat.sync.train import load_sync_expert
from eat.weights import REGISTRY
from tests.a2et_fixture import a2et_overlay, write_a2et_fixture
from tests.conftest import REPO
from tests.latent_fixture import fixture_overlay

# open_clip's ViT family at toy widths: 32² images in 16-px patches, 2 layers per tower, 16-d embeddings.
TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 16},
             "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any attempt to reach the network fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("clip_edit")
    params = parse_params(deep_merge(deep_merge(deep_merge(read_yaml(REPO / "params.yaml"),
                                                           read_yaml(REPO / "configs" / "micro.yaml")),
                                                fixture_overlay()), a2et_overlay()))
    paths = write_a2et_fixture(root, params)
    torch.manual_seed(2)
    a2et = build_a2et(params).state_dict()
    save_model({"a2et": a2et, "step": 0}, params, "full", root / "a2et.pt")
    basis = ExpressionBasis.load(paths["pca"], params.latent.pca_components)
    table = a2et_table(paths["latent_table"], paths["audio_table"])
    table = table[table.split == "train"].reset_index(drop=True)
    clips, _, _ = adaptation_clips(table, load_clips(params, table, basis, str(paths["latent_model"]),
                                                     with_frames=True))
    sampler = WindowSampler(clips, params.sync_expert.frames, 0)
    batches = functools.partial(edit_batch, clips, sampler, batch_size=1, emotion="neutral",
                                z_dim=params.adaptation.z_dim, half=params.signal.window_frames // 2, seed=0)
    return {"root": root, "params": params, "basis": basis, "a2et": a2et, "batches": batches,
            "expert": load_sync_expert(paths["sync_expert"]), "latent_model": paths["latent_model"]}


def _model(setup):
    params = setup["params"]
    torch.manual_seed(3)
    model = build_model(params, params.adaptation_variants["eat"], setup["basis"], setup["latent_model"])
    model.load_pretrained(setup["a2et"])
    return model


def _scorer(seed: int = 0) -> ClipScorer:
    torch.manual_seed(seed)
    return ClipScorer(build_clip(TINY_CLIP))


def test_the_default_architecture_is_openai_vit_b32():
    cfg = clip_architecture(CLIP_ARCHITECTURE)
    assert cfg["embed_dim"] == 512
    assert (cfg["vision_cfg"]["width"], cfg["vision_cfg"]["layers"], cfg["vision_cfg"]["patch_size"]) == (768, 12, 32)
    assert cfg["vision_cfg"]["image_size"] == 224 and cfg["text_cfg"]["context_length"] == 77
    assert REGISTRY["clip_vit_b32"].filename == "ViT-B-32.pt"


def test_loss_terms_are_finite_and_reach_only_the_mapper_and_eams(setup):
    model = _model(setup)
    params = editable_parameters(model)
    assert any(n.startswith("emotionprompt.") for n in params)
    assert any(n.startswith("generator.ea3d.") for n in params)
    assert any(n.startswith("audio2kptransformer.fea.") for n in params)
    assert not any(n.startswith("sidetuning.") for n in params)              # EDN is not edited
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(params)

    scorer = _scorer()
    text = scorer.embed_text("a happy face")
    assert text.shape == (1, 16) and torch.allclose(text.norm(dim=-1), torch.ones(1))
    model.train()
    terms = clip_edit_losses(model, scorer, text, setup["batches"](0), ClipEditConfig(), setup["expert"])
    assert set(terms) == {"clip", "latent", "sync"}
    assert all(torch.isfinite(t) for t in terms.values())
    assert 0 <= float(terms["clip"].detach()) <= 200                                    # 100 · (1 − cos), cos ∈ [−1, 1]
    sum(terms.values()).backward()
    grads = {n: p.grad for n, p in params.items()}
    for prefix in ("emotionprompt.", "generator.ea3d.", "audio2kptransformer.fea."):
        assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(prefix)), prefix
    assert all(p.grad is None for p in scorer.parameters())                    # CLIP stays frozen


def test_editing_moves_only_the_mapper_and_eams_and_raises_the_text_similarity(setup):
    model = _model(setup)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = ClipEditConfig(text="a happy face", steps=3, lr=3e-3, latent_weight=0.0, sync_weight=0.0, grad_clip=1.0)
    result = edit(model, _scorer(), cfg, setup["batches"])
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= set(result.state), sorted(changed - set(result.state))[:5]
    assert any(k.startswith("emotionprompt.") for k in changed)
    assert any(k.startswith("generator.ea3d.") for k in changed)
    assert len(result.log) == 3 and all(set(r) == {"step", "clip", "total"} for r in result.log)
    assert result.similarity_after > result.similarity_before
    assert all(torch.equal(result.state[k], after[k]) for k in result.state)


def test_missing_weights_are_reported_with_their_path(tmp_path):
    status = clip_status(tmp_path)
    assert status["available"] is False
    assert status["message"].startswith(f"needs CLIP weights at {tmp_path / 'ViT-B-32.pt'}")
    (tmp_path / "ViT-B-32.pt").write_bytes(b"not the weights")
    status = clip_status(tmp_path)
    assert status["available"] is False and "SHA-256" in status["message"]


def test_a_state_dict_of_the_architecture_loads_and_another_fails_clearly(tmp_path):
    reference = _scorer(seed=5)
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.model.state_dict().items()}},
               tmp_path / "tiny.pt")
    loaded = load_clip(tmp_path / "tiny.pt", TINY_CLIP)
    image = torch.rand(2, 3, 40, 40)
    assert torch.allclose(loaded.embed_images(image), reference.embed_images(image), atol=1e-6)
    assert torch.allclose(loaded.embed_text("a sad face"), reference.embed_text("a sad face"), atol=1e-6)

    with warnings.catch_warnings():      # OpenAI ships TorchScript archives; torch deprecates writing them
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(reference.model).save(str(tmp_path / "tiny_torchscript.pt"))
        scripted = load_clip(tmp_path / "tiny_torchscript.pt", TINY_CLIP)
    assert torch.allclose(scripted.embed_images(image), reference.embed_images(image), atol=1e-6)

    wider = {**TINY_CLIP, "vision_cfg": {**TINY_CLIP["vision_cfg"], "width": 48}}
    with pytest.raises(ClipWeightsError, match=r"tiny\.pt: not weights of CLIP \(custom config\): "
                                               r".*shape mismatches \(e\.g\. visual\.") as err:
        load_clip(tmp_path / "tiny.pt", wider)
    assert "ViT-B-32.pt" in str(err.value)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ClipWeightsError, match=r"other\.pt: not weights of CLIP ViT-B-32: \d+ missing keys"):
        load_clip(tmp_path / "other.pt")
