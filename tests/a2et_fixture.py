"""Inputs of the ``train_a2et`` stage on the tiny latent fixture (tests/latent_fixture.py), in the real layouts.

A latent model and a lip-sync expert with seeded random weights (training them is tested elsewhere),
the latents ``extract_latent`` writes with that model, a PCA basis fitted by ``fit_pca``, and audio
features whose mel and speech logits follow the fixture's mouth opening, plus a 16 kHz wav per clip.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from eat.config import Params
from eat.io.arrays import write_npz
from eat.latent.extract import extract_latent
from eat.latent.pca import fit_pca
from eat.latent.train import save_inference_model
from eat.models.latent import LatentNetworks
from eat.sync.train import save_sync_expert
from eat.sync.wav2lip_expert import SyncExpert
from tests.latent_fixture import FRAMES, write_latent_fixture

A2ET_STEPS = 12


def a2et_overlay() -> dict:
    """Params overlay (on the micro profile and the latent fixture's overlay) for the A2ET tests."""
    return {"signal": {"window_frames": 5}, "latent": {"pca_components": 8},
            "sync_expert": {"face_size": 16, "frames": 5, "mel_frames": 5},
            "a2et_train": {"latent": {"steps": A2ET_STEPS, "batch_size": 4}, "full": {"steps": 4, "batch_size": 1},
                           "checkpoint_every": 2, "log_every": 1, "threads_per_worker": 1, "eval_clips": 2}}


def write_a2et_fixture(root: Path, params: Params) -> dict[str, Path]:
    """Write every input of ``train_a2et`` under ``root``; returns the paths the stage takes."""
    pose_table = write_latent_fixture(root / "clips")
    torch.manual_seed(0)
    nets = LatentNetworks.from_config(params.latent)
    latent_model = root / "latent" / "model.pt"
    latent_model.parent.mkdir(parents=True)
    save_inference_model({"nets": nets.state_dict(), "step": 0, "vgg": {}}, params.latent, "enhanced", latent_model)
    latent_table = root / "latent.parquet"
    extract_latent(params, pose_table, latent_model, root / "latent_clips", latent_table)
    fit_pca(params, latent_table, root / "pca", root / "pca_reports")

    rows = []
    for row in pd.read_parquet(pose_table).itertuples(index=False):
        rng = np.random.default_rng(zlib.crc32(row.uid.encode()))
        opening = (np.arange(FRAMES) % 4).astype(np.float32)
        mel = (opening[:, None] * np.linspace(1, 0, params.signal.n_mels)[None] + rng.normal(0, 0.1, (FRAMES, 1))
               ).astype(np.float32)
        speech = rng.normal(0, 1, (FRAMES, params.audio_features.speech_window, 29)).astype(np.float32)
        features = root / "audio" / f"{row.uid}.npz"
        write_npz(features, {"mel": mel, "mfcc": mel[:, :13], "speech": speech})
        wav = root / "audio" / f"{row.uid}.wav"
        sf.write(wav, rng.normal(0, 0.1, FRAMES * 640).astype(np.float32), 16000, subtype="PCM_16")
        rows.append({"uid": row.uid, "features": str(features), "audio_norm": str(wav)})
    audio = pd.DataFrame(rows)
    audio_table = root / "audio.parquet"
    audio[["uid", "features"]].to_parquet(audio_table)
    latent = pd.read_parquet(latent_table).merge(audio[["uid", "audio_norm"]], on="uid")
    latent.to_parquet(latent_table)

    expert = root / "sync_expert" / "model.pt"
    expert.parent.mkdir(parents=True)
    torch.manual_seed(1)
    save_sync_expert(SyncExpert(params.sync_expert, params.signal.n_mels), 0, expert)
    return {"latent_table": latent_table, "audio_table": audio_table, "latent_model": latent_model,
            "pca": root / "pca", "sync_expert": expert}
