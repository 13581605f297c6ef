"""Bad input: every fault ends in the quarantine of the stage that sees it, with a precise reason, or is repaired.

The corpus (tests/fault_corpus.py) is real MEAD / LRW / VoxCeleb2 folders with one fault per
clip. The real stage functions run on it — ingest → normalise → crop_align → pose — in-process
(``ray.workers: 1``), and once more through Ray, which must quarantine the same clips for the
same reasons. A stage never raises on bad input, and no fault reaches a later table.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import decord
import numpy as np
import pytest
import soundfile as sf

from eat import ray_runtime
from eat.io.media import MediaError, write_video
from eat.io.video import read_frames
from eat.preprocess import crop_align
from eat.preprocess.landmarks import Detection
from eat.preprocess.layouts import uid_of
from eat.preprocess.probe import probe_media
from eat.synth import face_model as fm
from tests.conftest import micro_params
from tests.fault_corpus import CASES, NORMALISED, STAGES, FaultCorpus, Run, build_corpus, run_pipeline

KEPT = [case for case, fate in CASES.items() if fate == "kept"]
FAULTS = [case for case, fate in CASES.items() if fate != "kept"]


def normalised_video(run: Run, key: str) -> Path:
    return run.out / "normalised" / f"{uid_of(key)}.mp4"


def reason_pattern(run: Run, case: str, corpus: FaultCorpus) -> str:
    expected = corpus.expected[case]
    return expected.reason.replace(NORMALISED, re.escape(str(normalised_video(run, expected.key))))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> FaultCorpus:
    return build_corpus(tmp_path_factory.mktemp("fault_corpus"))


@pytest.fixture(scope="module")
def run(corpus, tmp_path_factory) -> Run:
    return run_pipeline(corpus.params(workers=1), tmp_path_factory.mktemp("fault_run"))


def test_every_good_or_repairable_clip_reaches_the_end_and_nothing_else_does(corpus, run):
    assert sorted(run.tables["pose"].clip_id) == sorted(corpus.expected[case].key for case in KEPT)


def test_every_fault_is_quarantined_exactly_once_and_nothing_else_is(corpus, run):
    assert sorted(run.quarantine.clip_id) == sorted(corpus.expected[case].key for case in FAULTS)


@pytest.mark.parametrize("case", FAULTS)
def test_fault_is_quarantined_by_its_stage_with_a_reason_naming_file_and_cause(corpus, run, case):
    expected = corpus.expected[case]
    rows = run.quarantine[run.quarantine.clip_id == expected.key]
    assert len(rows) == 1, f"{case}: {len(rows)} quarantine rows"
    row = rows.iloc[0]
    assert row.stage == expected.stage
    assert re.fullmatch(reason_pattern(run, case, corpus), row.reason), f"{case}: {row.reason!r}"
    # The row names the file the stage read: raw files up to normalise, the normalised video after.
    named = normalised_video(run, expected.key) if expected.stage == "crop_align" else expected.path
    assert Path(row.path) == named
    later = STAGES[STAGES.index(expected.stage):]
    assert all(expected.key not in set(run.tables[stage].clip_id) for stage in later)


def _normalised_row(run: Run, corpus: FaultCorpus, case: str) -> dict:
    table = run.tables["pose"]
    return table[table.clip_id == corpus.expected[case].key].iloc[0].to_dict()


@pytest.mark.parametrize("case", KEPT)
def test_kept_clip_is_25_fps_16_khz_mono_with_exactly_640_samples_per_frame(corpus, run, case):
    row = _normalised_row(run, corpus, case)
    video = decord.VideoReader(row["video_norm"], ctx=decord.cpu(0))
    steps = np.diff(video.get_frame_timestamp(range(len(video)))[:, 0])
    assert len(video) == row["n_frames"] and np.allclose(steps, 1 / 25, atol=1e-3), "not constant 25 fps"
    info = sf.info(row["audio_norm"])
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, row["n_frames"] * 640)
    assert len(decord.VideoReader(row["aligned"], ctx=decord.cpu(0))) == row["n_frames"]
    assert np.load(row["pose"]).shape == (row["n_frames"], 6)
    # 1.5 s of media: 37 whole frames of 16 kHz audio (37.5 × 640 samples), 38 when rendered as 38 frames at 25 fps.
    assert row["n_frames"] == (38 if probe_media(corpus.expected[case].path).fps == 25 else 37)


def test_48_khz_stereo_is_repaired_to_16_khz_mono(corpus, run):
    row = _normalised_row(run, corpus, "stereo_48k")
    raw = probe_media(row["audio_path"])
    assert (raw.audio_rate, raw.audio_channels) == (48000, 2)
    info = sf.info(row["audio_norm"])
    assert (info.samplerate, info.channels, info.frames) == (16000, 1, 37 * 640)


@pytest.mark.parametrize("case", ["fps_30", "good_mead"])
def test_30_fps_video_is_resampled_to_25_fps(corpus, run, case):
    raw = probe_media(corpus.expected[case].path)
    assert (raw.fps, raw.n_frames, raw.variable_frame_rate) == (30.0, 45, False)
    assert _normalised_row(run, corpus, case)["n_frames"] == 37


def test_variable_frame_rate_is_detected_and_made_constant(corpus, run):
    raw = probe_media(corpus.expected["variable_frame_rate"].path)
    assert raw.variable_frame_rate and raw.n_frames == 22 + 12  # 22 frames at 30 fps, then 12 at 15 fps
    manifest = run.tables["ingest"].set_index("clip_id")
    assert manifest.loc[corpus.expected["variable_frame_rate"].key, "fps"] == pytest.approx(raw.fps)
    assert _normalised_row(run, corpus, "variable_frame_rate")["n_frames"] == 37  # 1.5 s at 25 fps


def test_a_clip_under_a_non_ascii_root_is_kept_with_its_path_unchanged(corpus, run):
    row = _normalised_row(run, corpus, "non_ascii_path")
    assert Path(row["video_path"]) == corpus.expected["non_ascii_path"].path
    assert "/données/ä/W014/" in row["video_path"] and "/données/ä/W014/" in row["audio_path"]
    assert all(Path(row[column]).is_file() for column in ("video_norm", "audio_norm", "aligned", "pose"))


@pytest.fixture
def private_ray(tmp_path, monkeypatch) -> Iterator[None]:
    """A local Ray of this test's own (state outside the project's .ray/), whatever $EAT_RAY_ADDRESS says."""
    monkeypatch.setattr(ray_runtime, "REPO", tmp_path / "project")
    monkeypatch.delenv(ray_runtime.ADDRESS_ENV, raising=False)
    yield
    shutil.rmtree(ray_runtime.ray_temp_dir(), ignore_errors=True)


def test_the_parallel_ray_path_quarantines_and_keeps_the_same_clips(corpus, run, tmp_path, private_ray):
    with ray_runtime.ray_session(num_cpus=2):  # one local Ray for the four stages (each would start its own)
        parallel = run_pipeline(corpus.params(workers=2), tmp_path / "ray_run")

    def outcome(r: Run) -> list[tuple[str, str, str]]:
        return sorted((q.clip_id, q.stage, q.reason.replace(str(r.out), "<out>")) for q in r.quarantine.itertuples())

    assert outcome(parallel) == outcome(run)
    assert sorted(parallel.tables["pose"].clip_id) == sorted(run.tables["pose"].clip_id)
    for uid in run.tables["pose"].uid:
        assert np.array_equal(np.load(parallel.out / "pose" / f"{uid}.npy"), np.load(run.out / "pose" / f"{uid}.npy"))


class _ExactLandmarks:
    """A detector that returns the projected landmarks of the mean face at a given head pose."""

    def __init__(self, yaw: float, width: int, height: int) -> None:
        cam = fm.Camera(focal=float(max(width, height)), cx=width / 2, cy=height / 2)
        self.landmarks = fm.project(fm.neutral_landmarks(fm.FaceShape()), np.array([yaw, 0, 0, 0, 0, 0.0]),
                                    cam)[0].astype(np.float32)

    def __call__(self, frame: np.ndarray) -> Detection:
        return Detection(self.landmarks, 1)

    def close(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize("yaw", [60.0, -60.0])
def test_a_detected_profile_face_is_rejected_with_its_yaw(tmp_path, monkeypatch, yaw):
    # MediaPipe finds no face in the corpus' 80° profile (so "no face detected"); a detector that does find
    # profiles, as FAN can, must still see the clip rejected, by the yaw rule.
    path = tmp_path / "profile.mp4"
    write_video(path, [np.full((180, 320, 3), 128, np.uint8)] * 3, 25.0, 320, 180)
    monkeypatch.setattr(crop_align, "make_detector", lambda backend, weights: _ExactLandmarks(yaw, 320, 180))
    cfg = micro_params().crop_align
    with pytest.raises(MediaError) as err:
        crop_align.detect_track(read_frames(path), cfg, str(path))
    found = re.fullmatch(re.escape(str(path)) + r": profile view \(yaw (\d+)° > crop_align\.max_abs_yaw = 45\.0°\); "
                                                r"the models need near-frontal faces", str(err.value))
    assert found and abs(int(found.group(1)) - abs(yaw)) <= 3, str(err.value)
    monkeypatch.setattr(crop_align, "make_detector", lambda backend, weights: _ExactLandmarks(yaw / 3, 320, 180))
    assert crop_align.detect_track(read_frames(path), cfg, str(path)).shape == (3, 68, 2)
