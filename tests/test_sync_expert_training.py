"""The lip-sync expert on the supervision fixture (tests/supervision_fixture.py): it trains on Ray Train to the very
weights of the plain single-process loop it had before it, writes a model, metrics and a training log, resumes after a
kill to the weights of an uninterrupted run, keys its checkpoints by every setting that changes training, and its
evaluation recovers injected audio shifts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from eat.config import (
    SyncExpertConfig,
)
from eat.io.reproducible import SUPERVISOR_THREADS, reproducible_torch
from eat.sync import train as sync_train
from eat.sync.train import (
    LABEL,
    SyncClip,
    batch_loss,
    evaluate_sync,
    expert_embedder,
    load_sync_clips,
    load_sync_expert,
    min_train_frames,
    pair_accuracy,
    shifted,
    sync_table,
    train_sync_expert,
    usable,
)
from eat.sync.wav2lip_expert import SyncExpert
from metrics.sync import evaluate_offset
from tests.processes import drop_newest_checkpoint, in_fresh_process
from tests.supervision_fixture import (
    CLIPS,
    N_MELS,
    RAY,
    SIZE,
    log_losses,
    same_weights,
    sync_cfg,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _plain_sync_loop(cfg: SyncExpertConfig, clips: list[SyncClip], seed: int, threads: int = SUPERVISOR_THREADS,
                     losses: list[float] | None = None) -> SyncExpert:
    """The expected weights: the single-process loop the stage ran before Ray Train (seed, expert, Adam, then
    Adam steps on batches of (seed, step) on the supervisors' threads with deterministic algorithms), here.
    ``losses``: a list that gets each step's loss."""
    torch.manual_seed(seed)
    model = SyncExpert(cfg, clips[0].mel.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model.train()
    with reproducible_torch(threads=threads, deterministic=True):
        for step in range(cfg.steps):
            loss = batch_loss(model, clips, cfg, seed, step)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            if losses is not None:
                losses.append(loss.item())
    return model


def test_sync_expert_trains_to_the_plain_loops_weights_resumes_and_keys_its_runs_by_their_settings(
        supervision, on_ray_head):
    cfg, root = sync_cfg(), supervision["root"]
    out, metrics = root / "sync_whole", root / "sw" / "m.json"
    whole = in_fresh_process(train_sync_expert, cfg, 0, supervision["pose"], supervision["audio"], out, metrics, RAY)
    saved = json.loads(metrics.read_text())
    assert saved["model"] == LABEL and saved["steps"] == 6 and saved["resumed_at_step"] == 0
    assert saved["train_clips"] == 7 and saved["train_clips_by_dataset"] == {"LRW": 1, "MEAD": 6}
    assert np.isfinite([saved["train_loss_first"], saved["train_loss_last"]]).all()
    held = saved["heldout"]
    assert held["clips"] == 4 and held["trials"] == 4 * 11 and 0 <= held["offset_recovery_rate"] <= 1
    assert metrics.with_name("timing.json").is_file() and "timing" in whole
    log = log_losses(metrics)
    assert log.step.tolist() == [2, 4, 6] and np.isfinite(log.total).all()

    table = sync_table(supervision["pose"], supervision["audio"])
    clips, _ = usable(load_sync_clips(table[table.split == "train"], cfg.face_size), min_train_frames(cfg))
    first = load_sync_expert(out / "model.pt")
    assert same_weights(first, _plain_sync_loop(cfg, clips, 0)), "Ray Train changed the expert's weights"

    # Killed after its step-4 checkpoint, before the last one: the rerun resumes from step 4.
    assert drop_newest_checkpoint(out / "ray" / sync_train.RUN_NAME) == 4
    resumed = in_fresh_process(train_sync_expert, cfg, 0, supervision["pose"], supervision["audio"], out, metrics, RAY)
    assert resumed["resumed_at_step"] == 4
    assert same_weights(first, load_sync_expert(out / "model.pt"))
    again = json.loads(metrics.read_text())
    assert {**again, "resumed_at_step": 0} == saved, "resumed metrics differ from the uninterrupted run's"
    assert log_losses(metrics).equals(log)

    # Other parameters make another run: its digest differs, so the shared loop drops these checkpoints and starts
    # over (tests/test_ray_runtime.py); the checkpoint and log intervals change nothing trained, so not the digest.
    assert sync_train.run_digest(0, sync_cfg(lr=5e-4), clips) != sync_train.run_digest(0, cfg, clips)
    assert sync_train.run_digest(1, cfg, clips) != sync_train.run_digest(0, cfg, clips)
    assert sync_train.run_digest(0, sync_cfg(checkpoint_every=3, log_every=3), clips) == \
        sync_train.run_digest(0, cfg, clips)


def _perfect_embedder(clip: SyncClip) -> tuple[np.ndarray, np.ndarray]:
    """Window embeddings that know the fixture: mouth darkness per frame vs mel energy per frame, z-scored,
    5-frame windows. In sync they are (nearly) equal; displaced, they differ."""
    mouth = 255 - clip.frames[:, 20:28, 8:24].astype(np.float64).mean(axis=(1, 2, 3))
    energy = clip.mel[:, :20].astype(np.float64).mean(axis=1)

    def windows(x: np.ndarray) -> np.ndarray:
        z = (x - x.mean()) / x.std()
        return np.lib.stride_tricks.sliding_window_view(z, 5)

    return windows(mouth), windows(energy)


def test_sync_evaluation_recovers_every_injected_shift_with_a_perfect_embedding(supervision):
    clips = load_sync_clips(sync_table(supervision["pose"], supervision["audio"]), SIZE)
    result = evaluate_sync(clips, _perfect_embedder)
    assert result["clips"] == len(CLIPS) and result["skipped"] == []
    assert result["offset_recovery_rate"] == 1.0 and result["clips_with_every_shift_recovered"] == 1.0
    assert set(result["offset_recovery_by_dataset"]) == {"LRW", "MEAD"}
    assert result["confidence_in_sync"] > 2 * result["confidence_shuffled"]
    assert result["min_dist_in_sync"] < result["min_dist_shuffled"]


def test_the_recipe_learns_to_recover_injected_shifts_on_the_fixture(supervision):
    # 400 steps of a width-4 expert (InfoNCE) learn the fixture's mouth-loudness link well enough for the ±15-frame
    # search to find every injected shift of −5…5 on held-out clips; the untrained one finds none. The steps run in
    # the stage's own loop (the stage ends with its weights: the test above), on one thread: the supervisors' two
    # wait for each other beside the other pytest worker (8 s alone, 31–118 s in the suite on two threads).
    cfg = sync_cfg(base_channels=4, steps=400, batch_size=16, lr=1e-3)
    table = sync_table(supervision["pose"], supervision["audio"])
    train, _ = usable(load_sync_clips(table[table.split == "train"], cfg.face_size), min_train_frames(cfg))
    held = load_sync_clips(table[table.split == "test"], cfg.face_size)
    losses: list[float] = []
    model = _plain_sync_loop(cfg, train, 0, threads=1, losses=losses)
    untrained = _plain_sync_loop(cfg.model_copy(update={"steps": 0}), train, 0)
    with reproducible_torch(threads=1, deterministic=True):
        scores, at_step_0 = evaluate_sync(held, expert_embedder(model)), evaluate_sync(held, expert_embedder(untrained))
        pairs = pair_accuracy(model, usable(held, max(cfg.frames, cfg.mel_frames) + cfg.negative_min_shift)[0], 0)
    tail = len(losses) // 10
    assert np.mean(losses[-tail:]) < 0.75 * np.mean(losses[:tail])
    assert scores["offset_recovery_rate"] >= 0.9 > at_step_0["offset_recovery_rate"]
    assert scores["confidence_in_sync"] > 2 * scores["confidence_shuffled"]
    assert pairs["accuracy"] > 0.7


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
