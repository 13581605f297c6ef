"""A2ET's supervision networks on a tiny generated fixture: the sync expert and Emotion-FAN train, write a model
and metrics, resume after a stop to the very weights of an uninterrupted run, and the sync evaluation recovers
injected audio shifts.

The fixture (:func:`write_supervision_fixture`): 32² clips whose dark "mouth" opens with a random per-frame
loudness that also drives the mel energy (so sync is learnable, and a hand-built embedding is perfect), and
whose "face" colour is the emotion (so emotion is learnable). Written in the layouts of eat/schema.py: aligned
mp4 + landmark npz, audio-feature npz with ``mel``, the pose-stage and audio-feature tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from eat.config import EMOTIONS, EmotionClassifierConfig, SyncExpertConfig, deep_merge, read_yaml, write_yaml_atomic
from eat.emotion.emotion_fan import face_crops
from eat.emotion.train import (
    emotion_tables,
    frames_tensor,
    load_emotion_classifier,
    load_emotion_clips,
    read_face_crops,
    train_emotion_classifier,
)
from eat.io.arrays import write_npz
from eat.io.media import write_video
from eat.io.video import read_frames
from eat.sync.train import (
    LABEL,
    SyncClip,
    evaluate_sync,
    load_sync_clips,
    load_sync_expert,
    shifted,
    sync_table,
    train_sync_expert,
)
from metrics.sync import evaluate_offset
from tests.conftest import REPO

SIZE = 32
JUDGED_SIZE = SIZE // 2   # the size Emotion-FAN trains and judges at in these tests (the stored frames' size)
FRAMES = 36
N_MELS = 80
FACE_COLOUR = {"neutral": (200, 170, 140), "angry": (230, 60, 50), "happy": (240, 220, 60)}
CLIPS = [  # (dataset, identity, emotion, split)
    *[("MEAD", i, e, "train") for i in ("M005", "W011") for e in FACE_COLOUR],
    *[("MEAD", "W009", e, "test") for e in FACE_COLOUR],
    ("LRW", "ABOUT_00001", "neutral", "train"), ("LRW", "ABOUT_00002", "neutral", "test"),
]
LEVEL = {("W009", "angry"): 2}   # intensity level 3 except this test clip: outside the paper's evaluation set


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _clip(index: int, emotion: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (T, S, S, 3) uint8, mel (T, 80) float32 and the loudness (T,) in [0, 1] that drives both."""
    rng = np.random.default_rng(index)
    loudness = rng.random(FRAMES)
    background = 30 + 20 * index
    frames = np.empty((FRAMES, SIZE, SIZE, 3), np.uint8)
    for t, level in enumerate(loudness):
        img = np.full((SIZE, SIZE, 3), background, np.uint8)
        cv2.ellipse(img, (16 * 16, 15 * 16), (11 * 16, 13 * 16), 0, 0, 360, FACE_COLOUR[emotion], -1, cv2.LINE_AA,
                    shift=4)
        cv2.ellipse(img, (16 * 16, 23 * 16), (6 * 16, int((0.5 + 3.5 * level) * 16)), 0, 0, 360, (20, 10, 10), -1,
                    cv2.LINE_AA, shift=4)
        frames[t] = img
    profile = np.exp(-np.linspace(0, 4, N_MELS))                    # more energy in the low bands
    mel = -9 + 7 * loudness[:, None] * profile[None] + 0.1 * rng.standard_normal((FRAMES, N_MELS))
    return frames, mel.astype(np.float32), loudness


def write_supervision_fixture(root: Path) -> tuple[Path, Path]:
    """Write :data:`CLIPS` under ``root``; returns (pose-stage table, audio-feature table)."""
    root.mkdir(parents=True, exist_ok=True)
    pose_rows, audio_rows = [], []
    for index, (dataset, identity, emotion, split) in enumerate(CLIPS):
        frames, mel, _ = _clip(index, emotion)
        uid = f"{dataset}__{identity}__{emotion}__001"
        video, arrays, pose, features = (root / f"{uid}.mp4", root / f"{uid}.npz", root / f"{uid}.npy",
                                         root / f"{uid}.mel.npz")
        write_video(video, iter(frames), 25.0, SIZE, SIZE, crf=12, pix_fmt="yuv444p")
        write_npz(arrays, {"landmarks": np.zeros((FRAMES, 68, 2), np.float32),
                           "frames": read_frames(video, JUDGED_SIZE),        # the models' size, as crop_align stores
                           "box": np.tile(np.array([0, 0, SIZE, SIZE], np.float32), (FRAMES, 1))})
        np.save(pose, np.zeros((FRAMES, 6), np.float32))
        write_npz(features, {"mel": mel})
        pose_rows.append({"clip_id": uid.replace("__", "/"), "uid": uid, "dataset": dataset, "identity": identity,
                          "emotion": emotion, "level": LEVEL.get((identity, emotion), 3), "sentence": "001",
                          "split": split, "n_frames": FRAMES,
                          "aligned": str(video), "aligned_arrays": str(arrays), "pose": str(pose)})
        audio_rows.append({"uid": uid, "clip_id": uid.replace("__", "/"), "dataset": dataset, "split": split,
                           "n_frames": FRAMES, "features": str(features), "speech_backend": "ctc"})
    pose_table, audio_table = root / "pose.parquet", root / "audio.parquet"
    pd.DataFrame(pose_rows).to_parquet(pose_table)
    pd.DataFrame(audio_rows).to_parquet(audio_table)
    return pose_table, audio_table


@pytest.fixture(scope="module")
def fixture(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("supervision")
    pose, audio = write_supervision_fixture(root / "clips")
    return {"root": root, "pose": pose, "audio": audio}


def _sync_cfg(**change) -> SyncExpertConfig:
    base = SyncExpertConfig.model_validate(read_yaml(REPO / "params.yaml")["sync_expert"])
    return base.model_copy(update={"face_size": SIZE, "base_channels": 2, "steps": 6, "batch_size": 4,
                                   "windows_per_clip": 2, "checkpoint_every": 2, **change})


def _emotion_cfg(**change) -> EmotionClassifierConfig:
    base = EmotionClassifierConfig.model_validate(read_yaml(REPO / "params.yaml")["emotion_classifier"])
    return base.model_copy(update={"input_size": SIZE, "base_width": 8, "weights": "scratch", "steps": 6,
                                   "batch_size": 3, "checkpoint_every": 2, **change})


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ---- sync expert ---------------------------------------------------------------------------------

def test_sync_expert_trains_writes_model_and_metrics_and_resumes_bit_for_bit(fixture):
    cfg, root = _sync_cfg(), fixture["root"]
    whole = train_sync_expert(cfg, 0, fixture["pose"], fixture["audio"], root / "sync_whole", root / "sw" / "m.json")
    saved = json.loads((root / "sw" / "m.json").read_text())
    assert saved["model"] == LABEL and saved["steps"] == 6 and saved["resumed_at_step"] == 0
    assert saved["train_clips"] == 7 and saved["train_clips_by_dataset"] == {"LRW": 1, "MEAD": 6}
    assert np.isfinite([saved["train_loss_first"], saved["train_loss_last"]]).all()
    held = saved["heldout"]
    assert held["clips"] == 4 and held["trials"] == 4 * 11 and 0 <= held["offset_recovery_rate"] <= 1
    assert (root / "sw" / "timing.json").is_file() and "timing" in whole

    # A run stopped right after its step-4 checkpoint (as a kill would leave it), then started again.
    out = root / "sync_resumed"
    assert train_sync_expert(cfg, 0, fixture["pose"], fixture["audio"], out, root / "sr" / "m.json",
                             stop_after=4) == {"stopped_at": 4}
    assert (out / "train_state.pt").is_file() and not (out / "model.pt").exists()
    resumed = train_sync_expert(cfg, 0, fixture["pose"], fixture["audio"], out, root / "sr" / "m.json")
    assert resumed["resumed_at_step"] == 4
    assert _same_weights(load_sync_expert(root / "sync_whole" / "model.pt"), load_sync_expert(out / "model.pt"))
    again = json.loads((root / "sr" / "m.json").read_text())
    assert {**again, "resumed_at_step": 0} == saved, "resumed metrics differ from the uninterrupted run's"


def test_a_state_for_other_parameters_is_ignored(fixture):
    root = fixture["root"]
    out = root / "sync_other"
    train_sync_expert(_sync_cfg(), 0, fixture["pose"], fixture["audio"], out, root / "so" / "m.json", stop_after=2)
    result = train_sync_expert(_sync_cfg(lr=5e-4, steps=2), 0, fixture["pose"], fixture["audio"], out,
                               root / "so" / "m.json")
    assert result["resumed_at_step"] == 0 and result["steps"] == 2


def _perfect_embedder(clip: SyncClip) -> tuple[np.ndarray, np.ndarray]:
    """Window embeddings that know the fixture: mouth darkness per frame vs mel energy per frame, z-scored,
    5-frame windows. In sync they are (nearly) equal; displaced, they differ."""
    mouth = 255 - clip.frames[:, 20:28, 8:24].astype(np.float64).mean(axis=(1, 2, 3))
    energy = clip.mel[:, :20].astype(np.float64).mean(axis=1)

    def windows(x: np.ndarray) -> np.ndarray:
        z = (x - x.mean()) / x.std()
        return np.lib.stride_tricks.sliding_window_view(z, 5)

    return windows(mouth), windows(energy)


def test_sync_evaluation_recovers_every_injected_shift_with_a_perfect_embedding(fixture):
    clips = load_sync_clips(sync_table(fixture["pose"], fixture["audio"]), SIZE)
    result = evaluate_sync(clips, _perfect_embedder)
    assert result["clips"] == len(CLIPS) and result["skipped"] == []
    assert result["offset_recovery_rate"] == 1.0 and result["clips_with_every_shift_recovered"] == 1.0
    assert set(result["offset_recovery_by_dataset"]) == {"LRW", "MEAD"}
    assert result["confidence_in_sync"] > 2 * result["confidence_shuffled"]
    assert result["min_dist_in_sync"] < result["min_dist_shuffled"]


def test_trained_expert_recovers_injected_shifts_on_the_fixture(fixture):
    # 400 steps of a width-4 expert (~8 s quiet, InfoNCE) learn the fixture's mouth-loudness link well enough for the
    # ±15-frame search to find every injected shift of −5…5 on held-out clips; the untrained one finds none.
    cfg, root = _sync_cfg(base_channels=4, steps=400, batch_size=16, lr=1e-3, checkpoint_every=400), fixture["root"]
    result = train_sync_expert(cfg, 0, fixture["pose"], fixture["audio"], root / "sync_long", root / "sl" / "m.json")
    held = result["heldout"]
    assert result["train_loss_last"] < 0.75 * result["train_loss_first"]
    assert held["offset_recovery_rate"] >= 0.9 > result["heldout_at_step_0"]["offset_recovery_rate"]
    assert held["confidence_in_sync"] > 2 * held["confidence_shuffled"]
    assert held["pair_accuracy"] > 0.7


def test_shifted_audio_leads_the_video_by_k():
    # Distinct random embeddings per window, the same for video and audio: the clip in sync. After shifting by
    # k, video window i sits beside audio window i + k of the original, and the offset search must say k.
    emb = np.random.default_rng(0).standard_normal((30, 8))
    for k in (-4, 0, 3):
        v, a = shifted(emb, emb, k)
        assert len(v) == len(a) == 30 - abs(k)
        j = np.arange(len(v)) + max(0, -k)
        assert np.array_equal(v, emb[j]) and np.array_equal(a, emb[j + k])
        assert evaluate_offset(v, a, vshift=10).offset == k


def test_short_held_out_clips_are_skipped_not_scored():
    rng = np.random.default_rng(0)
    short = SyncClip("LRW__short", "LRW", np.zeros((12, SIZE, SIZE, 3), np.uint8), rng.random((12, N_MELS)))
    result = evaluate_sync([short], lambda c: (np.ones((8, 3)), np.ones((8, 3))))
    assert result["clips"] == 0 and result["skipped"][0].startswith("LRW__short: 12 frames")


# ---- emotion classifier ---------------------------------------------------------------------------

def test_emotion_classifier_trains_writes_model_and_metrics_and_resumes_bit_for_bit(fixture):
    cfg, root = _emotion_cfg(), fixture["root"]
    train_emotion_classifier(cfg, 0, fixture["pose"], root / "emo_whole", root / "ew" / "m.json")
    saved = json.loads((root / "ew" / "m.json").read_text())
    assert saved["steps"] == 6 and saved["weights"]["weights"] == "scratch" and saved["train_clips"] == 6
    held, protocol = saved["heldout"], saved["heldout_protocol"]
    assert held["clips"] == 3 and held["chance"] == saved["acc_emo_chance"] == 0.125
    assert protocol["clips"] == 2 and [e for e, acc in protocol["accuracy_by_emotion"].items() if acc is not None] \
        == ["happy", "neutral"]                                   # level 3 and neutral: W009's angry is level 2
    assert saved["acc_emo_ground_truth"] == protocol["mean_over_emotions"]
    assert set(held["accuracy_by_emotion"]) == set(EMOTIONS)
    assert [e for e, acc in held["accuracy_by_emotion"].items() if acc is not None] == sorted(FACE_COLOUR)
    assert np.asarray(held["confusion"]).sum() == 3

    out = root / "emo_resumed"
    assert train_emotion_classifier(cfg, 0, fixture["pose"], out, root / "er" / "m.json",
                                    stop_after=4) == {"stopped_at": 4}
    resumed = train_emotion_classifier(cfg, 0, fixture["pose"], out, root / "er" / "m.json")
    assert resumed["resumed_at_step"] == 4
    assert _same_weights(load_emotion_classifier(root / "emo_whole" / "model.pt"),
                         load_emotion_classifier(out / "model.pt"))
    assert {**json.loads((root / "er" / "m.json").read_text()), "resumed_at_step": 0} == saved


def test_emotion_training_crops_are_the_crops_acc_emo_judges(fixture):
    # Trained on what it will judge: frames at the test videos' resolution, face box cut and resized by the same
    # function eat.emotion.predict applies to generated videos (only uint8 rounding apart).
    train, _ = emotion_tables(fixture["pose"])
    clip = load_emotion_clips(train.iloc[:1], 24, frame_size=JUDGED_SIZE)[0]
    judged = face_crops(frames_tensor(read_frames(train.aligned.iloc[0], JUDGED_SIZE)), 24).movedim(-3, -1).numpy()
    assert clip.frames.shape == (FRAMES, 24, 24, 3) and clip.frames.dtype == np.uint8
    assert np.abs(clip.frames / 255.0 - judged).max() <= 0.5 / 255 + 1e-6
    assert not np.array_equal(clip.frames, read_face_crops(train.aligned.iloc[0], 24))   # the stored-size path differs


def test_emotion_classifier_learns_the_fixture_colours(fixture):
    # The fixture's emotion is the face colour: 80 steps fit the training clips and beat chance on the
    # held-out identity (3 clips, so the held-out bar is loose); frames at half the stored size, as the
    # pipeline trains it for its 64² test videos.
    root = fixture["root"]
    result = train_emotion_classifier(_emotion_cfg(steps=80, checkpoint_every=80), 0, fixture["pose"],
                                      root / "emo_long", root / "el" / "m.json", frame_size=JUDGED_SIZE)
    assert result["train_loss_last"] < 0.5 * result["train_loss_first"]
    assert result["train_accuracy"] == 1.0
    assert result["heldout"]["accuracy"] >= 2 / 3 > result["acc_emo_chance"]
    assert result["acc_emo_ground_truth"] >= 1 / 2


def test_emotion_tables_take_mead_only_and_reject_unknown_emotions(fixture, tmp_path):
    train, test = emotion_tables(fixture["pose"])
    assert (train.dataset == "MEAD").all() and len(train) == 6 and len(test) == 3
    table = pd.read_parquet(fixture["pose"])
    table.loc[0, "emotion"] = "bored"
    table.to_parquet(tmp_path / "pose.parquet")
    with pytest.raises(ValueError, match="bored"):
        emotion_tables(tmp_path / "pose.parquet")


# ---- stage scripts ----------------------------------------------------------------------------------

def _stage(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False, timeout=300)


def _stored_at(pose_table: Path, size: int, folder: Path) -> Path:
    """A copy of ``pose_table`` whose npz files hold the frames at ``size``², as crop_align stores them for
    ``signal.image_size = size`` (the stage scripts check the size against params)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.read_parquet(pose_table)
    for i, row in table.iterrows():
        with np.load(row.aligned_arrays) as stored:
            arrays = {**dict(stored), "frames": read_frames(row.aligned, size)}
        table.loc[i, "aligned_arrays"] = str(folder / Path(row.aligned_arrays).name)
        write_npz(table.loc[i, "aligned_arrays"], arrays)
    table.to_parquet(folder / "pose.parquet")
    return folder / "pose.parquet"


def test_stage_scripts_train_on_the_fixture_and_name_a_missing_input(fixture):
    root = fixture["root"]
    overlay = {"sync_expert": _sync_cfg().model_dump(), "emotion_classifier": _emotion_cfg().model_dump()}
    write_yaml_atomic(root / "params.yaml", deep_merge(read_yaml(REPO / "params.yaml"), overlay))
    size = read_yaml(root / "params.yaml")["signal"]["image_size"]
    pose = _stored_at(fixture["pose"], size, root / f"stored_at_{size}")
    common = ["--params", str(root / "params.yaml"), "--pose-table", str(pose)]
    for stage, extra in (("train_sync_expert", ["--audio-table", str(fixture["audio"])]),
                         ("train_emotion_classifier", [])):
        out, metrics = root / "cli" / stage, root / "cli" / f"{stage}-reports" / "metrics.json"
        proc = _stage([f"stages.{stage}", *common, *extra, "--out", str(out), "--metrics", str(metrics)])
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"{stage}: 6 steps" in proc.stdout and (out / "model.pt").is_file()
        assert json.loads(metrics.read_text())["steps"] == 6 and metrics.with_name("timing.json").is_file()

        missing = [f"stages.{stage}", "--pose-table", str(root / "missing.parquet"), "--out", str(root / "m"),
                   "--metrics", str(root / "m" / "metrics.json")]
        proc = _stage(missing)
        assert proc.returncode == 2 and "missing.parquet" in proc.stderr, proc.stderr[-2000:]
