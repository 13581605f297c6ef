"""The tiny generated fixture A2ET's supervision networks train on in tests/test_sync_expert_training.py and
tests/test_emotion_classifier_training.py (the ``supervision`` fixture of tests/conftest.py), and the small configs
and checks those tests share.

The fixture (:func:`write_supervision_fixture`): 32² clips whose dark "mouth" opens with a random per-frame
loudness that also drives the mel energy (so sync is learnable, and a hand-built embedding is perfect), and
whose "face" colour is the emotion (so emotion is learnable). Written in the layouts of eat/schema.py: aligned
mp4 + landmark npz, audio-feature npz with ``mel``, the pose-stage and audio-feature tables.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from eat.config import EmotionClassifierConfig, EmotionStillsConfig, RayConfig, SyncExpertConfig, read_yaml
from eat.io.arrays import write_npz
from eat.io.media import write_video
from eat.io.video import read_frames
from tests.processes import REPO

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


RAY = RayConfig(address="local", workers=2)   # the address: the session's Ray head (conftest ``on_ray_head``)


def fixture_clip(index: int, emotion: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        frames, mel, _ = fixture_clip(index, emotion)
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




def sync_cfg(**change) -> SyncExpertConfig:
    base = SyncExpertConfig.model_validate(read_yaml(REPO / "params.yaml")["sync_expert"])
    return base.model_copy(update={"face_size": SIZE, "base_channels": 2, "steps": 6, "batch_size": 4,
                                   "windows_per_clip": 2, "checkpoint_every": 2, "log_every": 2, **change})


def emotion_cfg(**change) -> EmotionClassifierConfig:
    base = EmotionClassifierConfig.model_validate(read_yaml(REPO / "params.yaml")["emotion_classifier"])
    stills = EmotionStillsConfig(identities=1, frames=2, pretrain_steps=2)   # the stage script renders them
    return base.model_copy(update={"input_size": SIZE, "base_width": 8, "weights": "scratch", "steps": 6,
                                   "batch_size": 3, "checkpoint_every": 2, "log_every": 2, "stills": stills, **change})


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def log_losses(metrics: Path) -> pd.DataFrame:
    """The training log beside ``metrics`` less its timings (which differ between runs)."""
    return pd.read_csv(metrics.with_name("train_log.csv")).drop(columns="seconds_per_step")
