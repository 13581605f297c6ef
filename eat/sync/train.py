"""Training of the Wav2Lip-style lip-sync expert behind L_sync (Sec. 3.3; stage ``train_sync_expert``).

Data: every clip of the ``train`` split (MEAD neutral and emotional, LRW, VoxCeleb2) of the pose-stage
table, joined by ``uid`` with the audio-feature table for its ``mel`` (T, n_mels), one mel frame per
video frame (eat/schema.py). Frames are read from the aligned mp4 at ``face_size``² and held in
memory (the miniature is small; at MEAD scale a streaming reader would replace :func:`load_sync_clips`).

Objective (``objective``), Adam at ``lr``:

- ``bce`` (Wav2Lip's ``color_syncnet_train.py``): pairs from :func:`~eat.sync.wav2lip_expert.sample_pair`,
  half in sync, half with the audio displaced by ``negative_min_shift`` … ``negative_max_shift`` frames;
  binary cross-entropy of the embeddings' cosine similarity (:func:`~eat.sync.wav2lip_expert.sync_bce_loss`).
  At our budget (hundreds of steps) it does not leave its 0.69 plateau: on the embedded data, 300–800
  steps end at held-out pair accuracy ≈ 0.5 and offset recovery ≈ 0–4 %, with or without a logit scale.
- ``infonce`` (the default profile's): :func:`make_contrastive_batch` windows, symmetric InfoNCE over the
  batch (:func:`~eat.sync.wav2lip_expert.sync_infonce_loss`); the negatives include the same clip displaced
  by 1 … ``windows_per_clip`` − 1 frames, exactly what the offset search must tell apart.

Deterministic and resumable: batch ``s`` (clips, windows, shifts) is drawn from a generator seeded
with ``(seed, s)``; the expert has no dropout; torch runs on :data:`~eat.io.reproducible.SUPERVISOR_THREADS`
threads with deterministic algorithms, always on CPUs (a GPU would give other weights).
Training is one Ray Train worker (:mod:`eat.ray_train`, the loop of the latent model, A2ET and adaptation; one
worker, as a data-parallel split of the batch would round differently): every ``checkpoint_every`` steps the
state (weights, Adam, step, per-step losses, log) is a Ray Train checkpoint in ``<out>/ray/sync_expert`` keyed by
a digest of the seed, the config and the exact training data (:func:`run_digest`); checkpoints of another digest
are deleted. A run killed after a checkpoint and started again ends with the same weights as an uninterrupted
run (tested bit for bit).

Held-out evaluation (:func:`evaluate_sync`, the ``test`` split): per clip, per-window embeddings
of sliding ``frames``-frame windows; for each injected audio shift ``k`` ∈ :data:`EVAL_SHIFTS` the
video and the audio are cut to their overlap with video frame ``i`` beside mel row ``i + k`` (the
audio leads by ``k`` frames) and syncnet_python's offset search (:func:`metrics.sync.evaluate_offset`,
±15 frames, fewer on short clips) must return ``k``. Also the mean confidence (LSE-C) and minimum
distance (LSE-D) of in-sync audio against another held-out clip's audio.

Outputs: ``<out>/model.pt`` (:func:`save_sync_expert`: ``{"label", "config", "n_mels", "steps",
"state_dict"}``, ``torch.load(weights_only=True)``), the Ray Train checkpoints in ``<out>/ray``, the metrics JSON
(deterministic numbers only), and beside it ``timing.json`` and ``train_log.csv`` (one row per ``log_every``
steps: step, mean loss ``total``, seconds_per_step).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
from tqdm.contrib.concurrent import thread_map

from eat import ray_train
from eat.config import RayConfig, SyncExpertConfig
from eat.io.atomic import write_text_atomic
from eat.io.hashing import settings_digest
from eat.io.reproducible import SUPERVISOR_THREADS, reproducible_torch
from eat.io.tables import write_csv_atomic
from eat.io.torch_files import save_torch_atomic
from eat.io.video import read_frames
from eat.ray_runtime import ray_session
from eat.sync.wav2lip_expert import (
    FACE_BOX,
    FULL_FRAME,
    SyncExpert,
    box_pixels,
    face_window,
    mel_window,
    sample_pair,
    sync_bce_loss,
    sync_infonce_loss,
)
from metrics.sync import DEFAULT_VSHIFT, evaluate_offset

log = logging.getLogger(__name__)

LABEL = "pipeline-trained expert (not syncnet_v2 weights)"
EVAL_SHIFTS: tuple[int, ...] = tuple(range(-5, 6))
RECOVERY_TARGET = 0.9
RUN_NAME = "sync_expert"   # the Ray Train run's folder under <out>/ray
_EMBED_CHUNK = 256     # windows per forward pass in evaluation


@dataclass(frozen=True)
class SyncClip:
    """One clip in memory: face crops (T, S, S, 3) uint8 RGB (:data:`FACE_BOX` of the aligned frames at
    ``face_size``, :func:`read_face_crops`), mel (T, n_mels) float32."""

    uid: str
    dataset: str
    frames: np.ndarray
    mel: np.ndarray

    @property
    def n_frames(self) -> int:
        return len(self.frames)


# ---- data ---------------------------------------------------------------------------------------

def sync_table(pose_table: Path | str, audio_table: Path | str) -> pd.DataFrame:
    """Rows of the pose-stage table with their ``features`` npz path, sorted by uid; clips without audio
    features (quarantined by the audio stage) are dropped with a warning."""
    pose, audio = pd.read_parquet(pose_table), pd.read_parquet(audio_table, columns=["uid", "features"])
    table = pose.merge(audio, on="uid", how="inner", validate="one_to_one")
    if len(table) < len(pose):
        missing = sorted(set(pose.uid) - set(table.uid))
        log.warning("%d clips of %s have no audio features in %s (first: %s)", len(missing), pose_table,
                    audio_table, missing[0])
    return table.sort_values("uid").reset_index(drop=True)


def read_face_crops(path: Path | str, face_size: int, box: tuple[float, ...] = FACE_BOX) -> np.ndarray:
    """(T, S, S, 3) uint8: the ``box`` of every frame of an aligned mp4, read at its stored resolution (the
    mouth is a few pixels tall in a downscaled whole crop) and area-resized to S² (cv2, 4× faster than
    :func:`~eat.sync.wav2lip_expert.face_crop`, which does the same on tensors to within a grey level or two)."""
    frames = read_frames(path)
    x0, y0, x1, y1 = box_pixels(frames.shape[1], frames.shape[2], box)
    return np.stack([cv2.resize(f[y0:y1, x0:x1], (face_size, face_size), interpolation=cv2.INTER_AREA) for f in frames])


def load_sync_clips(table: pd.DataFrame, face_size: int) -> list[SyncClip]:
    """Read the face crops (:func:`read_face_crops`) and the mel of every row of :func:`sync_table`, two clips at a
    time (decord and cv2 release the GIL: 1.8× faster on 2 cores)."""
    def load(row) -> SyncClip:
        for path in (row.aligned, row.features):
            if not Path(path).is_file():
                raise FileNotFoundError(f"clip {row.uid}: {path} not found; re-run the stage that writes it "
                                        f"(crop_align for aligned mp4s, audio_features for mel npz files)")
        frames = read_face_crops(row.aligned, face_size)
        with np.load(row.features) as arrays:
            mel = arrays["mel"].astype(np.float32)
        if len(frames) != len(mel):
            raise ValueError(f"clip {row.uid}: {row.aligned} has {len(frames)} frames but {row.features} has "
                             f"{len(mel)} mel frames; re-run the crop_align and audio_features stages")
        return SyncClip(row.uid, row.dataset, frames, mel)

    return thread_map(load, list(table.itertuples(index=False)), max_workers=2, desc="read clips", unit="clip",
                      mininterval=10)


def usable(clips: Sequence[SyncClip], min_frames: int) -> tuple[list[SyncClip], list[str]]:
    """Clips of at least ``min_frames`` frames, and a reason for each one left out."""
    kept = [c for c in clips if c.n_frames >= min_frames]
    skipped = [f"{c.uid}: {c.n_frames} frames, fewer than {min_frames}" for c in clips if c.n_frames < min_frames]
    return kept, skipped


def frames_tensor(frames: np.ndarray) -> torch.Tensor:
    """(..., S, S, 3) uint8 → (..., 3, S, S) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3).float().div_(255.0)


def make_batch(clips: Sequence[SyncClip], cfg: SyncExpertConfig, seed: int,
               step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch ``step``: mel windows (B, 1, n_mels, M), face windows (B, 3T, S/2, S), in-sync labels (B,).

    A pure function of (seed, step): clip ``c`` uniform, then a pair of :func:`sample_pair` in it.
    """
    rng = np.random.default_rng([seed, step])
    faces, mels, labels = [], [], []
    for _ in range(cfg.batch_size):
        clip = clips[int(rng.integers(len(clips)))]
        pair = sample_pair(clip.n_frames, cfg, rng)
        faces.append(clip.frames[pair.start: pair.start + cfg.frames])
        a = pair.start + pair.shift
        mels.append(clip.mel[a: a + cfg.mel_frames])
        labels.append(float(pair.in_sync))
    faces = face_window(frames_tensor(np.stack(faces)), cfg.face_size, FULL_FRAME)
    return mel_window(torch.from_numpy(np.stack(mels))), faces, torch.tensor(labels)


def make_contrastive_batch(clips: Sequence[SyncClip], cfg: SyncExpertConfig, seed: int,
                           step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``step`` of the infonce objective: mel windows (B, 1, n_mels, M) and face windows (B, 3T, S/2, S),
    row ``i`` of each in sync. ``B / L`` clips (uniform), ``L`` = ``windows_per_clip`` consecutive windows
    from a uniform start in each, so rows ``i`` and ``j`` of one clip are the same clip displaced by
    ``j − i`` frames. A pure function of (seed, step).
    """
    rng = np.random.default_rng([seed, step])
    span, n = max(cfg.frames, cfg.mel_frames), cfg.windows_per_clip
    faces, mels = [], []
    for _ in range(cfg.batch_size // n):
        clip = clips[int(rng.integers(len(clips)))]
        first = int(rng.integers(0, clip.n_frames - span - n + 2))
        starts = first + np.arange(n)
        faces.append(clip.frames[starts[:, None] + np.arange(cfg.frames)])
        mels.append(clip.mel[starts[:, None] + np.arange(cfg.mel_frames)])
    faces = face_window(frames_tensor(np.concatenate(faces)), cfg.face_size, FULL_FRAME)
    return mel_window(torch.from_numpy(np.concatenate(mels))), faces


def min_train_frames(cfg: SyncExpertConfig) -> int:
    """Frames a training clip needs: a window plus the displacement of a negative (bce) or plus
    ``windows_per_clip − 1`` further windows (infonce)."""
    span = max(cfg.frames, cfg.mel_frames)
    return span + (cfg.negative_min_shift if cfg.objective == "bce" else cfg.windows_per_clip - 1)


def batch_loss(model: SyncExpert, clips: Sequence[SyncClip], cfg: SyncExpertConfig, seed: int,
               step: int) -> torch.Tensor:
    """The training loss of batch ``step`` under ``cfg.objective``."""
    if cfg.objective == "infonce":
        return sync_infonce_loss(*model(*make_contrastive_batch(clips, cfg, seed, step)), cfg.logit_scale)
    mel, faces, in_sync = make_batch(clips, cfg, seed, step)
    return sync_bce_loss(*model(mel, faces), in_sync)


def run_digest(seed: int, cfg: SyncExpertConfig, clips: Sequence[SyncClip]) -> str:
    """What a checkpoint depends on: seed, config (less the checkpoint and log intervals) and the exact data."""
    return settings_digest({"seed": seed, "cfg": cfg.model_dump(exclude={"checkpoint_every", "log_every"})},
                           (part for clip in clips for part in (clip.uid, clip.frames, clip.mel)))


# ---- training -----------------------------------------------------------------------------------

class Trainer(ray_train.CheckpointedTrainer):
    """The expert and Adam of one run, the step reached, every step's loss and the log rows, with save/restore."""

    saved_lists = ("losses", "log")
    saved_parts = ("model", "opt")

    def __init__(self, cfg: SyncExpertConfig, n_mels: int, seed: int):
        self.cfg, self.seed = cfg, seed
        torch.manual_seed(seed)
        self.model = SyncExpert(cfg, n_mels)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.step = 0
        self.losses: list[float] = []
        self.log: list[dict[str, float]] = []

    def train_step(self, clips: Sequence[SyncClip], step: int) -> dict[str, float]:
        """One Adam step on :func:`batch_loss` of batch ``step``; its loss is kept and returned as ``total``."""
        loss = batch_loss(self.model, clips, self.cfg, self.seed, step)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.losses.append(loss.item())
        return {"total": self.losses[-1]}


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train loop of the one worker; ``config`` is built by :func:`fit`. On CPUs, with the thread count and
    deterministic algorithms of the supervisors (:func:`~eat.io.reproducible.reproducible_torch`)."""
    import ray  # local: Ray is heavy and only the training worker needs it

    cfg, seed = SyncExpertConfig(**config["cfg"]), config["seed"]
    with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):
        clips: list[SyncClip] = ray.get(config["clips"])
        ray_train.train_single_worker(Trainer(cfg, config["n_mels"], seed), clips, cfg, config, "train_sync_expert")


def fit(trainer: Trainer, clips: list[SyncClip], storage: Path, ray_config: RayConfig, digest: str) -> dict[str, Any]:
    """Run (or resume) the training of ``trainer`` (as built: step 0) on Ray Train, checkpoints in ``storage``;
    returns the final state."""
    import ray  # local: see train_worker

    with ray_session(ray_config.address, num_cpus=max(ray_config.workers, SUPERVISOR_THREADS)):
        return ray_train.fit(
            train_worker, {"cfg": trainer.cfg.model_dump(), "seed": trainer.seed, "n_mels": trainer.model.n_mels,
                           "clips": ray.put(clips)},
            storage=storage, name=RUN_NAME, digest=digest, steps=trainer.cfg.steps, num_workers=1,
            threads_per_worker=SUPERVISOR_THREADS, ray=ray_config, use_gpu=False)


def save_sync_expert(model: SyncExpert, steps: int, path: Path | str) -> None:
    """``model.pt``: the expert's weights with its config, ``n_mels`` and :data:`LABEL`. The config leaves out
    ``log_every``, a logging setting: the file is then byte for byte what the training wrote before it had one, and
    DVC keeps the stages downstream of an unchanged expert cached."""
    save_torch_atomic({"label": LABEL, "config": model.cfg.model_dump(exclude={"log_every"}), "n_mels": model.n_mels,
                       "steps": steps, "state_dict": model.state_dict()}, path)


def load_sync_expert(path: Path | str, device: str | torch.device = "cpu") -> SyncExpert:
    """The trained expert of a ``model.pt`` written by :func:`save_sync_expert`, frozen, in eval mode."""
    saved = torch.load(path, map_location=device, weights_only=True)
    model = SyncExpert(SyncExpertConfig(**saved["config"]), int(saved["n_mels"])).to(device)
    model.load_state_dict(saved["state_dict"])
    return model.eval().requires_grad_(False)


# ---- held-out evaluation ------------------------------------------------------------------------

Embedder = Callable[[SyncClip], tuple[np.ndarray, np.ndarray]]
"""Clip → (video, audio) per-window embeddings, each (N, D), window ``i`` = frames / mel rows ``i … i + span − 1``."""


def expert_embedder(model: SyncExpert) -> Embedder:
    """Per-window embeddings of ``model`` (eval mode): window ``i`` covers frames and mel rows from ``i``."""
    cfg = model.cfg
    span = max(cfg.frames, cfg.mel_frames)

    def embed(clip: SyncClip) -> tuple[np.ndarray, np.ndarray]:
        starts = np.arange(clip.n_frames - span + 1)
        video, audio = [], []
        model.eval()
        with torch.inference_mode():
            for chunk in np.array_split(starts, max(1, -(-len(starts) // _EMBED_CHUNK))):
                faces = clip.frames[chunk[:, None] + np.arange(cfg.frames)]              # (n, T, S, S, 3)
                mel = clip.mel[chunk[:, None] + np.arange(cfg.mel_frames)]               # (n, M, n_mels)
                video.append(model.embed_face(face_window(frames_tensor(faces), cfg.face_size, FULL_FRAME)).numpy())
                audio.append(model.embed_audio(mel_window(torch.from_numpy(mel))).numpy())
        return np.concatenate(video), np.concatenate(audio)

    return embed


def shifted(video: np.ndarray, audio: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Window embeddings of the clip with its audio leading by ``k`` frames: video window ``i`` beside audio
    window ``i + k``, both cut to their overlap. The offset search on the result should return ``k``."""
    n = len(video) - abs(k)
    return video[max(0, -k): max(0, -k) + n], audio[max(0, k): max(0, k) + n]


def search_range(n_windows: int) -> int:
    """syncnet_python's ±15 frames, narrowed on short clips so every candidate overlaps at least one window."""
    return min(DEFAULT_VSHIFT, n_windows - 1)


def evaluate_sync(clips: Sequence[SyncClip], embed: Embedder, shifts: Sequence[int] = EVAL_SHIFTS) -> dict:
    """Offset recovery, and confidence in sync vs with another clip's audio, over held-out ``clips``.

    A clip is used when, at every shift, the search range covers the shift (shorter clips are listed
    in ``skipped``). ``offset_recovery_rate`` is the fraction of (clip, shift) trials whose recovered
    offset equals the shift; the "shuffled" audio of clip ``c`` is the audio of the next used clip
    (sorted by uid), both cut to the shorter one.
    """
    max_shift = max(abs(k) for k in shifts)
    embedded, skipped = {}, []
    for clip in clips:
        video, audio = embed(clip)
        if search_range(len(video) - max_shift) < max_shift:
            skipped.append(f"{clip.uid}: {clip.n_frames} frames, too short for shifts of ±{max_shift}")
        else:
            embedded[clip.uid] = (clip.dataset, video, audio)
    if not embedded:
        return {"clips": 0, "skipped": skipped}
    hits: dict[tuple[str, int], bool] = {}
    for uid, (_, video, audio) in embedded.items():
        for k in shifts:
            v, a = shifted(video, audio, k)
            hits[uid, k] = evaluate_offset(v, a, search_range(len(v))).offset == k
    uids = sorted(embedded)
    synced, shuffled = [], []
    for c, uid in enumerate(uids):
        video, audio = embedded[uid][1:]
        synced.append(evaluate_offset(video, audio, search_range(len(video))))
        other = embedded[uids[(c + 1) % len(uids)]][2]
        n = min(len(video), len(other))
        shuffled.append(evaluate_offset(video[:n], other[:n], search_range(n)) if len(uids) > 1 else None)
    datasets = sorted({d for d, _, _ in embedded.values()})
    return {
        "clips": len(embedded), "shifts": list(shifts), "trials": len(hits),
        "offset_recovery_rate": _rate(hits.values()), "offset_recovery_target": RECOVERY_TARGET,
        "offset_recovery_by_shift": {str(k): _rate(hits[u, k] for u in uids) for k in shifts},
        "offset_recovery_by_dataset": {d: _rate(h for (u, _), h in hits.items() if embedded[u][0] == d)
                                       for d in datasets},
        "clips_with_every_shift_recovered": _rate(all(hits[u, k] for k in shifts) for u in uids),
        "confidence_in_sync": _mean(r.confidence for r in synced),
        "min_dist_in_sync": _mean(r.min_dist for r in synced),
        "confidence_shuffled": _mean(r.confidence for r in shuffled if r is not None),
        "min_dist_shuffled": _mean(r.min_dist for r in shuffled if r is not None),
        "skipped": skipped,
    }


def _rate(values) -> float | None:
    values = [bool(v) for v in values]
    return round(float(np.mean(values)), 4) if values else None


def _mean(values) -> float | None:
    values = list(values)
    return round(float(np.mean(values)), 4) if values else None


def pair_accuracy(model: SyncExpert, clips: Sequence[SyncClip], seed: int, batches: int = 8) -> dict[str, float]:
    """Wav2Lip's pair task on held-out ``clips`` (batches ``0 … batches − 1`` of :func:`make_batch`, in-sync vs
    displaced by ``negative_min_shift`` … ``negative_max_shift``): ``accuracy`` at cosine 0.5, and the
    threshold-free ``auc``, the fraction of (in-sync, displaced) pairs whose in-sync cosine is higher."""
    model.eval()
    cos, labels = [], []
    with torch.inference_mode():
        for b in range(batches):
            mel, faces, in_sync = make_batch(clips, model.cfg, seed, b)
            a, v = model(mel, faces)
            cos.append((a * v).sum(1).numpy())
            labels.append(in_sync.numpy() > 0.5)
    cos, labels = np.concatenate(cos), np.concatenate(labels)
    pos, neg = cos[labels], cos[~labels]
    return {"accuracy": round(float(np.mean((cos > 0.5) == labels)), 4),
            "auc": round(float(np.mean(pos[:, None] > neg[None, :])), 4)}


# ---- the stage ----------------------------------------------------------------------------------

def train_sync_expert(cfg: SyncExpertConfig, seed: int, pose_table: Path | str, audio_table: Path | str,
                      out_dir: Path | str, metrics_path: Path | str, ray_config: RayConfig) -> dict:
    """Stage ``train_sync_expert``: train (or resume) on the train split, save ``model.pt``, evaluate on the test split.

    ``ray_config``: where the training runs (params.yaml ``ray``). Returns the metrics, with ``"timing"``.
    """
    start = time.perf_counter()
    out_dir, metrics_path = Path(out_dir), Path(metrics_path)
    table = sync_table(pose_table, audio_table)
    span = max(cfg.frames, cfg.mel_frames)
    train, skipped = usable(load_sync_clips(table[table.split == "train"], cfg.face_size), min_train_frames(cfg))
    if not train:
        raise ValueError(f"{pose_table}: no train-split clip of at least {min_train_frames(cfg)} frames "
                         f"with audio features in {audio_table}; check the preprocessing and audio quarantines")
    held = load_sync_clips(table[table.split == "test"], cfg.face_size)
    loaded = time.perf_counter()

    digest, storage = run_digest(seed, cfg, train), out_dir / "ray"
    resumed_at = ray_train.latest_checkpoint(storage / RUN_NAME, digest)[1]
    trainer = Trainer(cfg, train[0].mel.shape[1], seed)
    state = fit(trainer, train, storage, ray_config, digest)
    trained = time.perf_counter()
    trainer.load_state_dict(state)
    save_sync_expert(trainer.model, trainer.step, out_dir / "model.pt")
    write_csv_atomic(trainer.log, metrics_path.with_name("train_log.csv"))

    with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):
        heldout = evaluate_sync(held, expert_embedder(trainer.model))
        pairs = pair_accuracy(trainer.model, usable(held, span + cfg.negative_min_shift)[0], seed) \
            if heldout["clips"] else {}
        heldout["pair_accuracy"], heldout["pair_auc"] = pairs.get("accuracy"), pairs.get("auc")
        baseline = Trainer(cfg, train[0].mel.shape[1], seed).model
        at_step_0 = evaluate_sync(held, expert_embedder(baseline))
    tail = max(1, len(trainer.losses) // 10)
    metrics = {
        "model": LABEL, "objective": cfg.objective, "steps": trainer.step, "resumed_at_step": resumed_at,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "train_clips": len(train), "train_clips_by_dataset": _count_by_dataset(train), "skipped_train_clips": skipped,
        "train_loss_first": round(float(np.mean(trainer.losses[:tail])), 4),
        "train_loss_last": round(float(np.mean(trainer.losses[-tail:])), 4),
        "heldout": heldout,
        "heldout_at_step_0": {k: at_step_0.get(k) for k in ("offset_recovery_rate", "confidence_in_sync",
                                                             "confidence_shuffled")},
    }
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    timing = {"load_seconds": round(loaded - start, 1), "train_seconds": round(trained - loaded, 1),
              "total_seconds": round(time.perf_counter() - start, 1),
              "seconds_per_step": round(float(np.mean([r["seconds_per_step"] for r in trainer.log])), 4),
              "peak_rss_mib_worker": state.get("peak_rss_mib"), "peak_rss_mib_driver": ray_train.peak_rss_mib()}
    write_text_atomic(metrics_path.with_name("timing.json"), json.dumps(timing, indent=2) + "\n")
    return {**metrics, "timing": timing}


def _count_by_dataset(clips: Sequence[SyncClip]) -> dict[str, int]:
    return {d: sum(c.dataset == d for c in clips) for d in sorted({c.dataset for c in clips})}
