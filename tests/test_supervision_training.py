"""A2ET's supervision networks on a tiny generated fixture: the sync expert and Emotion-FAN train on Ray Train to the
very weights of the plain single-process loop they had before it, write a model, metrics and a training log, resume
after a kill to the weights of an uninterrupted run, and the sync evaluation recovers injected audio shifts.

The fixture (:func:`write_supervision_fixture`): 32² clips whose dark "mouth" opens with a random per-frame
loudness that also drives the mel energy (so sync is learnable, and a hand-built embedding is perfect), and
whose "face" colour is the emotion (so emotion is learnable). Written in the layouts of eat/schema.py: aligned
mp4 + landmark npz, audio-feature npz with ``mel``, the pose-stage and audio-feature tables.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from eat.config import (
    EMOTIONS,
    EmotionClassifierConfig,
    EmotionStillsConfig,
    RayConfig,
    SyncExpertConfig,
    deep_merge,
    read_yaml,
    write_yaml_atomic,
)
from eat.emotion import train as emotion_train
from eat.emotion.emotion_fan import face_crops, load_emotion_fan
from eat.emotion.train import (
    EmotionClip,
    emotion_tables,
    frames_tensor,
    load_emotion_classifier,
    load_emotion_clips,
    read_face_crops,
    train_emotion_classifier,
)
from eat.io.arrays import write_npz
from eat.io.media import write_video
from eat.io.reproducible import SUPERVISOR_THREADS, reproducible_torch
from eat.io.video import read_frames
from eat.ray_train import read_state
from eat.sync import train as sync_train
from eat.sync.train import (
    LABEL,
    SyncClip,
    batch_loss,
    evaluate_sync,
    load_sync_clips,
    load_sync_expert,
    min_train_frames,
    shifted,
    sync_table,
    train_sync_expert,
    usable,
)
from eat.sync.wav2lip_expert import SyncExpert
from metrics.sync import evaluate_offset
from tests.conftest import REPO
from tests.processes import RAY_TRAIN_FAST_POLL, in_fresh_process

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


RAY = RayConfig(address="local", workers=2)   # the address is the session's Ray head (fixture ``on_ray_head``)


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


@pytest.fixture(scope="module")
def on_ray_head(ray_head):
    """The trainings of this module attach to the session's Ray head (about a second) instead of each starting and
    stopping a local Ray of its own, as the stages do with ``EAT_RAY_ADDRESS`` set."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**ray_head.env, **RAY_TRAIN_FAST_POLL}.items():
            patch.setenv(name, value)
        yield ray_head


def _sync_cfg(**change) -> SyncExpertConfig:
    base = SyncExpertConfig.model_validate(read_yaml(REPO / "params.yaml")["sync_expert"])
    return base.model_copy(update={"face_size": SIZE, "base_channels": 2, "steps": 6, "batch_size": 4,
                                   "windows_per_clip": 2, "checkpoint_every": 2, "log_every": 2, **change})


def _emotion_cfg(**change) -> EmotionClassifierConfig:
    base = EmotionClassifierConfig.model_validate(read_yaml(REPO / "params.yaml")["emotion_classifier"])
    return base.model_copy(update={"input_size": SIZE, "base_width": 8, "weights": "scratch", "steps": 6,
                                   "batch_size": 3, "checkpoint_every": 2, "log_every": 2, **change})


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _checkpoints(run: Path) -> set[Path]:
    """The Ray Train checkpoint folders of ``run`` (not Ray's run record beside them)."""
    return {folder for folder in run.glob("checkpoint_*") if folder.is_dir()}


def _drop_newest_checkpoint(run: Path) -> int:
    """Delete the newest Ray Train checkpoint of ``run`` (what a run killed before writing it leaves); the step of
    the newest one left."""
    steps = {folder: read_state(folder)["step"] for folder in _checkpoints(run)}
    newest = max(steps, key=steps.get)
    shutil.rmtree(newest)
    return max(step for folder, step in steps.items() if folder != newest)


def _log_losses(metrics: Path) -> pd.DataFrame:
    """The training log beside ``metrics`` less its timings (which differ between runs)."""
    return pd.read_csv(metrics.with_name("train_log.csv")).drop(columns="seconds_per_step")


# ---- sync expert ---------------------------------------------------------------------------------

def _plain_sync_loop(cfg: SyncExpertConfig, clips: list[SyncClip], seed: int) -> SyncExpert:
    """The expected weights: the single-process loop the stage ran before Ray Train (seed, expert, Adam, then
    Adam steps on batches of (seed, step) on the supervisors' threads with deterministic algorithms), here."""
    torch.manual_seed(seed)
    model = SyncExpert(cfg, clips[0].mel.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):
        for step in range(cfg.steps):
            loss = batch_loss(model, clips, cfg, seed, step)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model


def test_sync_expert_trains_to_the_plain_loops_weights_and_resumes_bit_for_bit(fixture, on_ray_head):
    cfg, root = _sync_cfg(), fixture["root"]
    out, metrics = root / "sync_whole", root / "sw" / "m.json"
    whole = in_fresh_process(train_sync_expert, cfg, 0, fixture["pose"], fixture["audio"], out, metrics, RAY)
    saved = json.loads(metrics.read_text())
    assert saved["model"] == LABEL and saved["steps"] == 6 and saved["resumed_at_step"] == 0
    assert saved["train_clips"] == 7 and saved["train_clips_by_dataset"] == {"LRW": 1, "MEAD": 6}
    assert np.isfinite([saved["train_loss_first"], saved["train_loss_last"]]).all()
    held = saved["heldout"]
    assert held["clips"] == 4 and held["trials"] == 4 * 11 and 0 <= held["offset_recovery_rate"] <= 1
    assert metrics.with_name("timing.json").is_file() and "timing" in whole
    log = _log_losses(metrics)
    assert log.step.tolist() == [2, 4, 6] and np.isfinite(log.total).all()

    table = sync_table(fixture["pose"], fixture["audio"])
    clips, _ = usable(load_sync_clips(table[table.split == "train"], cfg.face_size), min_train_frames(cfg))
    first = load_sync_expert(out / "model.pt")
    assert _same_weights(first, _plain_sync_loop(cfg, clips, 0)), "Ray Train changed the expert's weights"

    # Killed after its step-4 checkpoint, before the last one: the rerun resumes from step 4.
    assert _drop_newest_checkpoint(out / "ray" / sync_train.RUN_NAME) == 4
    resumed = in_fresh_process(train_sync_expert, cfg, 0, fixture["pose"], fixture["audio"], out, metrics, RAY)
    assert resumed["resumed_at_step"] == 4
    assert _same_weights(first, load_sync_expert(out / "model.pt"))
    again = json.loads(metrics.read_text())
    assert {**again, "resumed_at_step": 0} == saved, "resumed metrics differ from the uninterrupted run's"
    assert _log_losses(metrics).equals(log)


def test_checkpoints_for_other_parameters_are_dropped(fixture, on_ray_head):
    root = fixture["root"]
    out, run = root / "sync_other", root / "sync_other" / "ray" / sync_train.RUN_NAME
    in_fresh_process(train_sync_expert, _sync_cfg(steps=2), 0, fixture["pose"], fixture["audio"], out,
                     root / "so" / "m.json", RAY)
    before = _checkpoints(run)
    result = in_fresh_process(train_sync_expert, _sync_cfg(lr=5e-4, steps=2), 0, fixture["pose"], fixture["audio"],
                              out, root / "so" / "m.json", RAY)
    assert result["resumed_at_step"] == 0 and result["steps"] == 2
    assert before and not before & _checkpoints(run)


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


def test_trained_expert_recovers_injected_shifts_on_the_fixture(fixture, on_ray_head):
    # 400 steps of a width-4 expert (~8 s quiet, InfoNCE) learn the fixture's mouth-loudness link well enough for the
    # ±15-frame search to find every injected shift of −5…5 on held-out clips; the untrained one finds none.
    cfg, root = _sync_cfg(base_channels=4, steps=400, batch_size=16, lr=1e-3, checkpoint_every=400,
                          log_every=100), fixture["root"]
    result = in_fresh_process(train_sync_expert, cfg, 0, fixture["pose"], fixture["audio"], root / "sync_long",
                              root / "sl" / "m.json", RAY)
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

def _plain_emotion_loop(cfg: EmotionClassifierConfig, clips: list, seed: int,
                        initial: dict[str, torch.Tensor] | None = None) -> torch.nn.Module:
    """The expected weights: the single-process loop the stage ran before Ray Train (seed, classifier (from
    ``initial`` weights when given), optimiser, step schedule, then steps on batches of (seed, step) with dropout
    seeded by (seed, step), on the supervisors' threads with deterministic algorithms), here."""
    torch.manual_seed(seed)
    model, _ = load_emotion_fan(cfg)
    if initial is not None:
        model.load_state_dict(initial)
    optimiser = (torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
                 if cfg.optimizer == "sgd" else
                 torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay))
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, sorted({int(f * cfg.steps) for f in cfg.lr_milestones}),
                                                    gamma=cfg.lr_gamma)
    model.train()
    with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):
        for step in range(cfg.steps):
            frames, labels = emotion_train.make_batch(clips, cfg, seed, step)
            torch.manual_seed(seed * 1_000_003 + step)
            loss = F.cross_entropy(model(frames), labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
    return model


def test_emotion_classifier_trains_to_the_plain_loops_weights_and_resumes_bit_for_bit(fixture, on_ray_head):
    # Dropout on, so that the weights depend on each step's seeding; the lr drops after steps 1 and 4 (milestones).
    cfg, root = _emotion_cfg(attention_dropout=0.5, classifier_dropout=0.5), fixture["root"]
    out, metrics = root / "emo_whole", root / "ew" / "m.json"
    in_fresh_process(train_emotion_classifier, cfg, 0, fixture["pose"], out, metrics, RAY)
    saved = json.loads(metrics.read_text())
    assert saved["steps"] == 6 and saved["weights"]["weights"] == "scratch" and saved["train_clips"] == 6
    held, protocol = saved["heldout"], saved["heldout_protocol"]
    assert held["clips"] == 3 and held["chance"] == saved["acc_emo_chance"] == 0.125
    assert protocol["clips"] == 2 and [e for e, acc in protocol["accuracy_by_emotion"].items() if acc is not None] \
        == ["happy", "neutral"]                                   # level 3 and neutral: W009's angry is level 2
    assert saved["acc_emo_ground_truth"] == protocol["mean_over_emotions"]
    assert set(held["accuracy_by_emotion"]) == set(EMOTIONS)
    assert [e for e, acc in held["accuracy_by_emotion"].items() if acc is not None] == sorted(FACE_COLOUR)
    assert np.asarray(held["confusion"]).sum() == 3
    log = _log_losses(metrics)
    assert log.step.tolist() == [2, 4, 6] and np.isfinite(log.total).all()

    train_table, _ = emotion_tables(fixture["pose"])
    first = load_emotion_classifier(out / "model.pt")
    expected = _plain_emotion_loop(cfg, load_emotion_clips(train_table, cfg.input_size), 0)
    assert _same_weights(first, expected), "Ray Train changed the classifier's weights"

    # Killed after its step-4 checkpoint, before the last one: the rerun resumes from step 4.
    assert _drop_newest_checkpoint(out / "ray" / emotion_train.RUN_NAME) == 4
    resumed = in_fresh_process(train_emotion_classifier, cfg, 0, fixture["pose"], out, metrics, RAY)
    assert resumed["resumed_at_step"] == 4
    assert _same_weights(first, load_emotion_classifier(out / "model.pt"))
    assert {**json.loads(metrics.read_text()), "resumed_at_step": 0} == saved
    assert _log_losses(metrics).equals(log)


def test_still_clips_are_trained_on_alone_first_then_mixed_into_the_clips(fixture, on_ray_head):
    # The plain loops' weights: 3 steps on the still clips alone, then the stage's 6 steps on clips and stills from
    # those weights. The stills here are the fixture's own training clips under other names (two frames each).
    cfg, root = _emotion_cfg(stills=EmotionStillsConfig(identities=1, frames=2, pretrain_steps=3)), fixture["root"]
    out, metrics = root / "emo_stills", root / "es" / "m.json"
    train_table, _ = emotion_tables(fixture["pose"])
    clips = load_emotion_clips(train_table, cfg.input_size)
    stills = [EmotionClip(f"still__{c.uid}", c.label, c.frames[:2]) for c in clips]
    result = in_fresh_process(train_emotion_classifier, cfg, 0, fixture["pose"], out, metrics, RAY, stills=stills)
    assert result["still_clips"] == len(stills) and result["train_clips"] == len(clips)
    assert result["pretraining"]["steps"] == 3 and result["pretraining"]["still_clips"] == len(stills)
    assert pd.read_csv(metrics.with_name("pretrain_log.csv")).step.tolist() == [2, 3]
    pretrained = _plain_emotion_loop(cfg.model_copy(update={"steps": 3}), stills, 0)
    expected = _plain_emotion_loop(cfg, [*clips, *stills], 0, pretrained.state_dict())
    assert _same_weights(load_emotion_classifier(out / "model.pt"), expected)
    assert not _same_weights(expected, _plain_emotion_loop(cfg, [*clips, *stills], 0))


def test_emotion_training_crops_are_the_crops_acc_emo_judges(fixture):
    # Trained on what it will judge: frames at the test videos' resolution, face box cut and resized by the same
    # function eat.emotion.predict applies to generated videos (only uint8 rounding apart).
    train, _ = emotion_tables(fixture["pose"])
    clip = load_emotion_clips(train.iloc[:1], 24, frame_size=JUDGED_SIZE)[0]
    judged = face_crops(frames_tensor(read_frames(train.aligned.iloc[0], JUDGED_SIZE)), 24).movedim(-3, -1).numpy()
    assert clip.frames.shape == (FRAMES, 24, 24, 3) and clip.frames.dtype == np.uint8
    assert np.abs(clip.frames / 255.0 - judged).max() <= 0.5 / 255 + 1e-6
    assert not np.array_equal(clip.frames, read_face_crops(train.aligned.iloc[0], 24))   # the stored-size path differs


def test_emotion_classifier_learns_the_fixture_colours(fixture, on_ray_head):
    # The fixture's emotion is the face colour: 80 steps fit the training clips and beat chance on the
    # held-out identity (3 clips, so the held-out bar is loose); frames at half the stored size, as the
    # pipeline trains it for its 64² test videos.
    root = fixture["root"]
    result = in_fresh_process(train_emotion_classifier, _emotion_cfg(steps=80, checkpoint_every=80, log_every=20), 0,
                              fixture["pose"], root / "emo_long", root / "el" / "m.json", RAY, frame_size=JUDGED_SIZE)
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

def _stage(args: list[str], ray_env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a stage script attached to the session's Ray head (``ray_env`` = ``ray_head.env``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0", **RAY_TRAIN_FAST_POLL, **ray_env}
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


def test_stage_scripts_train_on_the_fixture_and_name_a_missing_input(fixture, ray_head):
    root = fixture["root"]
    overlay = {"sync_expert": _sync_cfg().model_dump(), "emotion_classifier": _emotion_cfg().model_dump()}
    write_yaml_atomic(root / "params.yaml", deep_merge(read_yaml(REPO / "params.yaml"), overlay))
    size = read_yaml(root / "params.yaml")["signal"]["image_size"]
    pose = _stored_at(fixture["pose"], size, root / f"stored_at_{size}")
    common = ["--params", str(root / "params.yaml"), "--pose-table", str(pose)]
    for stage, extra in (("train_sync_expert", ["--audio-table", str(fixture["audio"])]),
                         ("train_emotion_classifier", [])):
        out, metrics = root / "cli" / stage, root / "cli" / f"{stage}-reports" / "metrics.json"
        proc = _stage([f"stages.{stage}", *common, *extra, "--out", str(out), "--metrics", str(metrics)], ray_head.env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"{stage}: 6 steps" in proc.stdout and (out / "model.pt").is_file()
        assert json.loads(metrics.read_text())["steps"] == 6 and metrics.with_name("timing.json").is_file()
        assert metrics.with_name("train_log.csv").is_file() and list((out / "ray").glob("*/checkpoint_*/state.pt"))

        missing = [f"stages.{stage}", "--pose-table", str(root / "missing.parquet"), "--out", str(root / "m"),
                   "--metrics", str(root / "m" / "metrics.json")]
        proc = _stage(missing, ray_head.env)
        assert proc.returncode == 2 and "missing.parquet" in proc.stderr, proc.stderr[-2000:]
