"""The whole DVC pipeline on the micro profile, in a copy of the repository, as a user would run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eat.config import apply_profile
from tests.conftest import REPO
from tests.processes import RAY_TRAIN_FAST_POLL, start_ray_head


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                         check=True, capture_output=True, text=True).stdout
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def _run(args: list[str], cwd: Path, ray_env: dict[str, str] | None = None) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", **RAY_TRAIN_FAST_POLL, **(ray_env or {})}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.mark.slow(seconds=270)
def test_dvc_repro_micro_profile_end_to_end(tmp_path):
    """Every Ray stage attaches to one Ray head (``EAT_RAY_ADDRESS``, as ``make flow RAY_ADDRESS=…`` does) instead of
    starting a local Ray of its own: the same work, ten Ray start-ups fewer. The head runs in the copy of the
    repository, where its workers resolve the paths relative to it that the stages give their tasks (a head
    elsewhere would quarantine every clip at ingest: file not found)."""
    repo = tmp_path / "repo"
    for rel in _tracked_files():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, repo / rel)
    _run(["git", "init", "-q"], repo)
    params = apply_profile(repo / "configs" / "micro.yaml", repo / "params.yaml")
    dvc = str(Path(sys.executable).with_name("dvc"))

    head = start_ray_head(cwd=repo)
    try:
        _run([dvc, "repro"], repo, head.env)
    finally:
        head.stop()

    clips = pd.read_parquet(repo / "data" / "synth" / "groundtruth" / "clips.parquet")
    m = params.synth.mead
    expected_mead = (len(m.train_identities) + len(m.test_identities)) * (
        m.neutral_sentences + (len(m.emotions) - 1) * len(m.levels) * m.sentences_per_level)
    assert (clips.dataset == "MEAD").sum() == expected_mead
    summary = json.loads((repo / "reports" / "synth" / "summary.json").read_text())
    assert summary["frames"] == clips.n_frames.sum()
    assert (repo / "reports" / "synth" / "contact_sheet.png").stat().st_size > 1000
    assert (repo / "reports" / "synth" / "sample.mp4").stat().st_size > 1000

    # Preprocessing keeps every clean synthetic clip and aligns audio and video exactly.
    final = pd.read_parquet(repo / "data" / "features" / "pose.parquet")
    assert sorted(final.clip_id) == sorted(clips.clip_id)
    report = json.loads((repo / "reports" / "preprocess" / "metrics.json").read_text())
    assert report["quarantined"] == {"ingest": 0, "normalise": 0, "crop_align": 0, "pose": 0}
    assert report["vs_groundtruth"]["av_lag_frames_nonzero"] == 0

    # The latent model trains both variants, extraction covers every clip, the PCA basis has the official layout.
    for variant in ("osfv", "enhanced"):
        metrics = json.loads((repo / "reports" / "latent" / variant / "metrics.json").read_text())
        assert metrics["steps"] == params.latent_train.steps and metrics["heldout"]["clips"] > 0
        assert (repo / "models" / "latent" / variant / "model.pt").is_file()
    latent = pd.read_parquet(repo / "data" / "features" / "latent.parquet")
    assert sorted(latent.clip_id) == sorted(clips.clip_id)
    assert np.load(repo / "models" / "pca" / "U_mead.npy").shape == (45, 45)
    pca = json.loads((repo / "reports" / "pca" / "metrics.json").read_text())
    assert pca["components"] == params.latent.pca_components

    # The supervisors' stages train for the profile's steps and write their model, metrics, per-step log and Ray
    # Train checkpoints (the lip-sync expert and Emotion-FAN also their timing).
    for name, cfg in (("speech_recognizer", params.speech_recognizer), ("sync_expert", params.sync_expert),
                      ("emotion_classifier", params.emotion_classifier)):
        reports = repo / "reports" / name
        assert json.loads((reports / "metrics.json").read_text())["steps"] == cfg.steps, name
        assert (reports / "train_log.csv").is_file(), name
        assert name == "speech_recognizer" or (reports / "timing.json").is_file(), name
        assert (repo / "models" / name / "model.pt").is_file(), name
        assert list((repo / "models" / name / "ray").glob("*/checkpoint_*/state.pt")), name

    # A2ET pretrains in both phases; the full phase scores generated held-out videos beside its baselines, the
    # latent phase (no rendering loss) its pose/expression error.
    for phase, score in (("latent", "pe_mse"), ("full", "Sync_generated")):
        metrics = json.loads((repo / "reports" / "a2et" / phase / "metrics.json").read_text())
        assert metrics["steps"] == getattr(params.a2et_train, phase).steps and metrics["heldout"]["clips"] > 0
        assert metrics["heldout"][score] is not None
        assert (repo / "reports" / "a2et" / phase / "heldout_example.mp4").stat().st_size > 1000
    full_log = pd.read_csv(repo / "reports" / "a2et" / "full" / "train_log.csv")
    assert {"sync", "face_l1", "perceptual", "pca", "latent"} <= set(full_log.columns)
    held = json.loads((repo / "reports" / "a2et" / "full" / "metrics.json").read_text())["heldout"]
    for key in ("pe_mse", "Sync_generated_shuffled", "Sync_static", "Sync_pose_only", "Sync_ground_truth"):
        assert held[key] is not None, key
    for video in ("generated", "pose_only", "static"):     # None where no face is found in the micro profile's 32²
        assert {f"PSNR_{video}", f"SSIM_{video}", f"M-LMD_{video}", f"face_frames_{video}"} <= set(held)

    # Adaptation trains the profile's variants; evaluation scores every model; the report is built from them.
    for variant in params.adaptation_runs:
        metrics = json.loads((repo / "reports" / "adaptation" / variant / "metrics.json").read_text())
        assert metrics["steps"] == params.adaptation_train.steps and metrics["trainable_parameters"] > 0
    for model in ("ground_truth", "pretrain", "static", "latent_osfv", "latent_enhanced", *params.adaptation_runs):
        metrics = json.loads((repo / "reports" / "evaluate" / model / "metrics.json").read_text())
        assert metrics["MEAD/clips"] > 0 and "MEAD/Acc_emo" in metrics and metrics["LRW/clips"] > 0
    assert json.loads((repo / "reports" / "evaluate" / "ground_truth" / "metrics.json").read_text())["MEAD/SSIM"] \
        in (1.0, None)                                    # the ground truth against itself (None: no face found)
    assert (repo / "reports" / "emotion_control" / "interpolation.png").stat().st_size > 1000
    for name in ("paper.md", "index.html"):
        assert "Table 1" in (repo / "reports" / name).read_text()
    assert "\\label{tab:eat-T1_MEAD}" in (repo / "reports" / "paper.tex").read_text()

    # Nothing changed: a second repro runs nothing and DVC reports everything up to date.
    again = _run([dvc, "repro"], repo)
    assert "didn't change, skipping" in again and "Running stage" not in again
    assert "up to date" in _run([dvc, "status"], repo)
