"""Sync: a perfect embedder recovers an injected A/V offset; the SyncNet v2 and expert adapters give per-window
embeddings the offset search accepts."""

from __future__ import annotations

import numpy as np
import pytest

from eat.sync.embedders import expert_embedder, load_embedder, syncnet_embedder
from metrics.sync import AVClip, sync_score

CODE = 8          # per-frame hidden code carried by both streams
SPAN = 5          # frames per window, as SyncNet


def av_clip(n: int, audio_lead: int, seed: int = 0) -> AVClip:
    """Frames show code[t]; mel row t carries code[t + audio_lead] (the audio leads by ``audio_lead`` frames)."""
    pad = 20
    code = np.random.default_rng(seed).integers(0, 255, (n + 2 * pad, CODE))
    frames = np.zeros((n, 4, CODE, 3), np.uint8)
    frames[:, 0, :, 0] = code[pad:pad + n]
    mel = code[pad + audio_lead:pad + audio_lead + n].astype(np.float32)
    return AVClip(f"lead{audio_lead}", frames, mel=mel)


def perfect_embedder(clip: AVClip) -> tuple[np.ndarray, np.ndarray]:
    """Window i: the codes of frames / mel rows i … i + 4, read straight from the arrays."""
    n = len(clip.frames) - SPAN + 1
    v = clip.frames[:, 0, :, 0].astype(np.float64)
    a = clip.mel.astype(np.float64)
    win = np.arange(n)[:, None] + np.arange(SPAN)
    return v[win].reshape(n, -1), a[win].reshape(n, -1)


@pytest.mark.parametrize("lead", [-7, -2, 0, 3, 12])
def test_an_injected_offset_is_recovered_with_high_confidence(lead):
    score = sync_score(av_clip(60, lead), perfect_embedder)
    assert score.offset == lead
    assert score.vshift == 15 and score.windows == 56
    assert score.confidence > score.min_dist     # edge windows meet zero-padded audio: min_dist > 0 unless in sync
    if lead == 0:
        assert score.min_dist < 1e-3


def test_unrelated_audio_has_lower_confidence_than_synced_audio():
    synced = av_clip(60, 0)
    other = AVClip("other", synced.frames, mel=av_clip(60, 0, seed=1).mel)
    assert sync_score(other, perfect_embedder).confidence < 0.5 * sync_score(synced, perfect_embedder).confidence


def test_short_clips_narrow_the_search_so_every_offset_overlaps():
    score = sync_score(av_clip(9, 2), perfect_embedder)
    assert score.windows == 5 and score.vshift == 4 and score.offset == 2
    with pytest.raises(ValueError, match="need at least 2"):
        sync_score(av_clip(5, 0), perfect_embedder)


def test_the_pipeline_expert_plugs_in(tmp_path):
    import torch

    from eat.sync.train import save_sync_expert
    from eat.sync.wav2lip_expert import SyncExpert
    from eat.weights import WeightsError
    from tests.conftest import micro_params

    cfg = micro_params().sync_expert
    torch.manual_seed(0)
    n_mels = 16
    clip = AVClip("x", np.random.default_rng(0).integers(0, 255, (24, 48, 48, 3), dtype=np.uint8),
                  mel=np.random.default_rng(1).normal(size=(24, n_mels)).astype(np.float32))
    embed = expert_embedder(SyncExpert(cfg, n_mels).eval())
    video, audio = embed(clip)
    assert video.shape == audio.shape and len(video) == 24 - max(cfg.frames, cfg.mel_frames) + 1
    assert sync_score(clip, embed).windows == len(video)
    # Without SyncNet v2's weights: the expert, under its own column name; with neither, the registry's error.
    save_sync_expert(SyncExpert(cfg, n_mels), 0, tmp_path / "model.pt")
    assert load_embedder(tmp_path / "model.pt", weights_folder=tmp_path)[0] == "Sync_expert"
    with pytest.raises(WeightsError, match="syncnet_v2.model"):
        load_embedder(None, weights_folder=tmp_path)


def test_syncnet_v2_plugs_in():
    import torch

    from eat.sync.syncnet_v2 import SyncNetV2

    torch.manual_seed(0)
    clip = AVClip("x", np.random.default_rng(0).integers(0, 255, (9, 64, 64, 3), dtype=np.uint8),
                  samples=np.random.default_rng(1).normal(0, 0.1, 9 * 640).astype(np.float32))
    embed = syncnet_embedder(SyncNetV2().eval())
    score = sync_score(clip, embed)
    assert score.windows == 9 - 5 and score.vshift == 3
    with pytest.raises(ValueError, match="needs the audio samples"):
        embed(AVClip("y", clip.frames))
