"""A2ET pretraining (eat/a2et): window assembly at clip edges, the PCA → E → K path, the drawn pose image, and
the ``train_a2et`` stage on a tiny fixture: the latent phase writes its outputs, and a run cut short before its last
checkpoint resumes to the same weights as an uninterrupted one. The full phase, its held-out scores and log, run in
the end-to-end test of the whole DAG (tests/test_pipeline_e2e.py); checkpoints of other parameters are dropped in the
shared Ray Train loop (tests/test_ray_runtime.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from eat.a2et.data import WindowSampler, window_indices
from eat.a2et.pose_image import head_box_images
from eat.config import deep_merge, parse_params, read_yaml, write_yaml_atomic
from eat.latent.pca import ExpressionBasis, fit_basis
from eat.models.keypoints import compose_keypoints, rotation_matrix
from eat.preprocess.probe import probe_media
from tests.a2et_fixture import A2ET_STEPS, a2et_overlay, write_a2et_fixture
from tests.conftest import REPO
from tests.latent_fixture import FRAMES, fixture_overlay
from tests.processes import drop_newest_checkpoint, resumed_step, run_stage


def test_windows_repeat_the_edge_frames():
    assert window_indices(np.array([0]), 10, 2).tolist() == [[0, 0, 0, 1, 2]]
    assert window_indices(np.array([9]), 10, 2).tolist() == [[7, 8, 9, 9, 9]]
    assert window_indices(np.array([5]), 10, 2).tolist() == [[3, 4, 5, 6, 7]]
    assert window_indices(np.array([1]), 2, 3).tolist() == [[0, 0, 0, 1, 1, 1, 1]]   # clip shorter than the window


def test_sampler_draws_runs_inside_clips_as_a_function_of_the_step():
    class Clip:
        def __init__(self, n):
            self.n_frames = n

    sampler = WindowSampler([Clip(7), Clip(3), Clip(5)], length=5, seed=3)
    clip, start = sampler(4, 64)
    assert set(clip.tolist()) == {0, 2}                       # the 3-frame clip has no run of 5
    assert all(s + 5 <= (7 if c == 0 else 5) for c, s in zip(clip, start, strict=True))
    again = sampler(4, 64)
    assert np.array_equal(clip, again[0]) and np.array_equal(start, again[1])
    frames_clip, frames = sampler.expand(clip[:2], start[:2])
    assert frames.tolist() == [*range(start[0], start[0] + 5), *range(start[1], start[1] + 5)]
    assert frames_clip.tolist() == [clip[0]] * 5 + [clip[1]] * 5


def test_pca_to_expression_to_keypoints_follows_eq1():
    rng = np.random.default_rng(0)
    k = 15
    expressions = rng.normal(0, 0.05, (200, k, 3)).astype(np.float32)
    basis, _ = fit_basis(expressions, 3 * k)
    pe = basis.encode(expressions[:4])
    e = basis.decode(torch.from_numpy(pe))                                           # tensors: the same decode
    assert torch.allclose(e, torch.from_numpy(expressions[:4]), atol=1e-5)           # all axes: exact round trip
    assert np.allclose(e.numpy(), basis.decode(pe), atol=1e-6)
    canonical = torch.from_numpy(rng.normal(0, 0.3, (4, k, 3)).astype(np.float32))
    rotation = rotation_matrix(torch.tensor([10.0, -20, 0, 45]), torch.tensor([5.0, 0, -10, 0]),
                               torch.tensor([0.0, 3, 0, -8]))
    translation = torch.tensor([[0.1, 0, 0], [0, -0.1, 0], [0, 0, 0.2], [0.05, 0.05, 0]])
    kp = compose_keypoints(canonical, rotation, translation, e)
    expected = torch.einsum("bij,bkj->bki", rotation, canonical) + translation[:, None] + e
    assert torch.allclose(kp, expected, atol=1e-5)
    truncated = ExpressionBasis(basis.mean, basis.axes, 4)
    assert truncated.decode(torch.zeros(1, 4)).flatten().numpy() == pytest.approx(basis.mean, abs=1e-6)


def test_head_box_image_follows_the_pose():
    still = np.zeros((2, 6), np.float32)
    turned = np.array([[30, 0, 0, 0, 0, 0], [0, 0, 0, 0.3, 0, 0]], np.float32)
    a, b = head_box_images(still, 32), head_box_images(turned, 32)
    assert a.shape == (2, 32, 32) and a.dtype == np.uint8 and a.max() == 255
    assert np.array_equal(a[0], a[1])
    assert (a[0] != b[0]).mean() > 0.05                                    # yaw redraws the box
    cols = lambda im: np.average(np.arange(32), weights=im.sum(0))        # noqa: E731
    assert cols(b[1]) > cols(a[1]) + 3                                      # +x translation moves it right


# ---- the stage on the fixture --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stage_inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("a2et")
    merged = deep_merge(deep_merge(deep_merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "configs" /
                                                                                         "micro.yaml")),
                                   fixture_overlay()), a2et_overlay())
    write_yaml_atomic(root / "params.yaml", merged)
    paths = write_a2et_fixture(root, parse_params(merged))
    return {"root": root, "params": root / "params.yaml", **paths}


def _stage(inputs: dict[str, Path], phase: str, name: str, init: Path | None = None) -> list[str]:
    return [sys.executable, "-m", "stages.train_a2et", "--phase", phase, "--params", str(inputs["params"]),
            "--latent-table", str(inputs["latent_table"]), "--audio-table", str(inputs["audio_table"]),
            "--latent-model", str(inputs["latent_model"]), "--pca", str(inputs["pca"]),
            "--sync-expert", str(inputs["sync_expert"]), "--init", str(init) if init else "scratch",
            "--out", str(inputs["root"] / name / "model"), "--reports", str(inputs["root"] / name / "reports")]


@pytest.mark.slow(seconds=60)
def test_latent_phase_trains_and_a_killed_run_resumes_to_the_same_weights(stage_inputs, ray_head):
    ray_env = ray_head.env          # every run attaches to the session's Ray head
    run_stage(_stage(stage_inputs, "latent", "whole"), ray_env)
    whole = stage_inputs["root"] / "whole"
    metrics = json.loads((whole / "reports" / "metrics.json").read_text())
    assert metrics["steps"] == A2ET_STEPS and metrics["heldout"]["clips"] == 2
    assert metrics["loss_last"] < metrics["loss_first"]
    assert metrics["heldout"]["pe_mse"] > 0 and "Sync_generated" not in metrics["heldout"]   # scored unrendered
    log = pd.read_csv(whole / "reports" / "train_log.csv")
    assert log.step.tolist() == list(range(1, A2ET_STEPS + 1)) and {"pca", "latent"} <= set(log.columns)
    video = whole / "reports" / "heldout_example.mp4"
    info = probe_media(video)
    assert info.has_video and info.has_audio and info.n_frames == FRAMES and info.width == 2 * 2 * 32

    # What a run killed before its last checkpoint leaves (a real SIGKILL mid-run: tests/test_latent_train.py): the
    # checkpoints before it and no model. The rerun resumes from the newest one left and ends with the same weights.
    model = whole / "model" / "model.pt"
    uninterrupted = torch.load(model, weights_only=True)["a2et"]
    left = drop_newest_checkpoint(whole / "model" / "ray" / "latent")
    model.unlink()
    assert resumed_step(run_stage(_stage(stage_inputs, "latent", "whole"), ray_env), A2ET_STEPS) == left
    again = torch.load(model, weights_only=True)["a2et"]
    assert again.keys() == uninterrupted.keys() and all(torch.equal(again[k], uninterrupted[k]) for k in again)
    assert pd.read_csv(whole / "reports" / "train_log.csv").drop(columns="seconds_per_step").equals(
        log.drop(columns="seconds_per_step"))
