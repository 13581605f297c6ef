"""Preprocessing invariants on the micro synthetic dataset: exact lengths, shapes, agreement with the ground truth,
clip-by-clip resume and byte-identical reruns.

The four stages (ingest → normalise → crop_align → pose) run once per module, in-process, on
the session's synthetic dataset (tests/conftest.py); every clip is checked.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import decord
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from eat.config import Params
from eat.preprocess import stages
from eat.preprocess.evaluate import evaluate
from tests.conftest import micro_params
from tests.fault_corpus import Run, run_pipeline

SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps


@pytest.fixture(scope="module")
def params(synth_dataset) -> Params:
    _, root, _ = synth_dataset
    return micro_params({"data": {"mead_root": str(root / "MEAD"), "lrw_root": str(root / "LRW"),
                                  "voxceleb2_root": str(root / "VoxCeleb2"),
                                  "transcripts": str(root / "groundtruth" / "clips.parquet")},
                         "ray": {"workers": 1}})


@pytest.fixture(scope="module")
def run(params, tmp_path_factory) -> Run:
    return run_pipeline(params, tmp_path_factory.mktemp("preprocess"))


@pytest.fixture(scope="module")
def clips(run) -> list[dict]:
    return run.tables["pose"].to_dict("records")


def _frame_count(path: str) -> int:
    return len(decord.VideoReader(path, ctx=decord.cpu(0)))


def test_every_synthetic_clip_survives_with_nothing_quarantined(synth_dataset, run):
    _, _, truth = synth_dataset
    assert sorted(run.tables["pose"].clip_id) == sorted(truth.clip_id)
    assert run.quarantine.empty, run.quarantine.to_dict("records")


def test_audio_has_exactly_640_samples_per_video_frame(clips):
    for clip in clips:
        info = sf.info(clip["audio_norm"])
        assert (info.samplerate, info.channels) == (16000, 1)
        assert info.frames == clip["n_frames"] * SAMPLES_PER_FRAME, clip["clip_id"]


def test_normalised_and_aligned_videos_have_one_frame_per_row_and_square_crops(params, clips):
    size = params.crop_align.size
    for clip in clips:
        assert _frame_count(clip["video_norm"]) == clip["n_frames"], clip["clip_id"]
        aligned = decord.VideoReader(clip["aligned"], ctx=decord.cpu(0))
        assert len(aligned) == clip["n_frames"] and aligned[0].shape == (size, size, 3), clip["clip_id"]


def test_landmarks_and_pose_have_one_row_per_frame_and_landmarks_lie_inside_the_crop(params, clips):
    size = params.crop_align.size
    for clip in clips:
        with np.load(clip["aligned_arrays"]) as arrays:
            landmarks, box = arrays["landmarks"], arrays["box"]
        t = clip["n_frames"]
        assert landmarks.shape == (t, 68, 2) and box.shape == (t, 4), clip["clip_id"]
        assert np.load(clip["pose"]).shape == (t, 6), clip["clip_id"]
        assert landmarks.min() >= 0 and landmarks.max() <= size, clip["clip_id"]


def test_head_pose_is_smooth(clips):
    for clip in clips:
        yaw = np.load(clip["pose"])[:, 0]
        assert np.abs(np.diff(yaw)).mean() < 2.0, clip["clip_id"]


def test_landmarks_pose_and_sync_agree_with_the_synthetic_ground_truth(synth_dataset, params, run):
    _, root, truth = synth_dataset
    errors = evaluate(run.tables["pose"], root / "groundtruth", params.crop_align.size).set_index("clip_id")
    assert sorted(errors.index) == sorted(truth.clip_id)
    worst = errors[["yaw_err_deg", "mouth_lmd_px"]].max()
    assert worst.yaw_err_deg < 6.0, errors.yaw_err_deg.idxmax()
    assert worst.mouth_lmd_px < 8.0, errors.mouth_lmd_px.idxmax()
    assert (errors.av_lag_frames == 0).all(), errors[errors.av_lag_frames != 0].av_lag_frames.to_dict()


def test_rerun_after_losing_one_record_recomputes_only_that_clip(params, run, monkeypatch):
    aligned = run.out / "aligned"
    lost = run.tables["crop_align"].uid.iloc[len(run.tables["crop_align"]) // 2]
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in aligned.iterdir()}
    (aligned / f"{lost}.json").unlink()
    calls: list[str] = []

    def counted(work):
        def wrapper(row, out_dir, **kwargs):
            calls.append(row["uid"])
            return work(row, out_dir, **kwargs)
        return wrapper

    monkeypatch.setattr(stages, "crop_align_clip", counted(stages.crop_align_clip))
    monkeypatch.setattr(stages, "pose_clip", counted(stages.pose_clip))
    stages.crop_align(params, run.out / "normalised.parquet", aligned, run.out / "aligned.parquet")
    assert calls == [lost]
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in aligned.iterdir()}
    assert sorted(after) == sorted(before)
    for name, (mtime, data) in after.items():
        assert data == before[name][1], f"{name} changed"
        assert (mtime == before[name][0]) == (not name.startswith(f"{lost}.")), f"{name} rewritten or not"
    # Identical outputs: the next stage has nothing to redo.
    calls.clear()
    stages.pose(params, run.out / "aligned.parquet", run.out / "pose", run.out / "pose.parquet")
    assert calls == []


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_second_run_from_scratch_is_byte_identical(params, run):
    first = _digests(run.out)
    assert {"manifest.parquet", "aligned.parquet", "pose.parquet"} <= set(first)
    shutil.rmtree(run.out)
    run_pipeline(params, run.out)
    second = _digests(run.out)
    assert sorted(second) == sorted(first)
    changed = [name for name in first if first[name] != second[name]]
    assert not changed, f"not deterministic: {changed}"
    pd.testing.assert_frame_equal(pd.read_parquet(run.out / "pose.parquet"), run.tables["pose"])
