"""Training of the Emotion-FAN classifier behind Acc_emo (stage ``train_emotion_classifier``).

Data: the MEAD clips of the pose-stage table, ``train`` split for training and ``test`` split (EAMM's
test identities) held out; the label of a clip is its ``emotion`` in :data:`eat.config.EMOTIONS`
order. Face frames are the aligned mp4 downscaled to the resolution of the videos the classifier will judge
(``signal.image_size``), its face box resized to ``input_size``², held in memory (the miniature is
small; at MEAD scale a streaming reader would replace :func:`load_emotion_clips`).

Objective (Emotion-FAN's ``fan_afew_traintest.py``): ``train_frames`` frames per clip, each mirrored with
probability 1/2 (its only augmentation; :func:`jitter` adds crop and colour changes), cross-entropy of the
frame-attention logits, lr × ``lr_gamma`` at each ``lr_milestones`` fraction of the steps. ``optimizer``: SGD
with momentum and weight decay as Emotion-FAN, which fine-tunes a FER+ backbone; from scratch on the embedded
data SGD stays at the ln 8 plateau (docs/probes/emotion_fan), so the default profile uses AdamW.
Backbone weights come from :func:`~eat.emotion.emotion_fan.load_emotion_fan` (``auto``: the Emotion-FAN file
when present and matching, else from scratch; the metrics say which).

Deterministic and resumable as eat/sync/train.py: batch ``s`` is a function of (seed, s) (clips in
per-epoch permutations, frames from a generator seeded with ``(seed, s)``), dropout masks come from
``torch.manual_seed`` of (seed, s), :data:`~eat.io.reproducible.SUPERVISOR_THREADS` torch threads on CPUs,
deterministic algorithms. Training is one Ray Train worker (:mod:`eat.ray_train`): every ``checkpoint_every``
steps the state (weights, optimiser, schedule, step, per-step losses, log) is a Ray Train checkpoint in
``<out>/ray/emotion_classifier`` keyed by a digest of the seed, config, initial weights and data
(:func:`run_digest`); a killed run resumes from the newest to the weights of an uninterrupted one.

Held-out evaluation (:func:`evaluate_emotion`): every frame of a test clip at once (Emotion-FAN's
evaluation), accuracy overall, per emotion and their mean over the emotions, the confusion matrix, and chance
(1/8) beside them, on every test clip (``heldout``) and on the paper's evaluation set, level 3 and neutral
(``heldout_protocol``). The latter's mean over the 8 emotions is the "Ground Truth" row of Acc_emo (Table 1,
``acc_emo_ground_truth``), i.e. the classifier on real test videos.

Outputs: ``<out>/model.pt`` (:func:`save_emotion_classifier`: ``{"config", "emotions", "weights",
"steps", "state_dict"}``, ``torch.load(weights_only=True)``), the Ray Train checkpoints in ``<out>/ray``, the
metrics JSON (deterministic numbers only), and beside it ``timing.json`` and ``train_log.csv`` (one row per
``log_every`` steps: step, mean loss ``total``, seconds_per_step).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from eat import ray_train
from eat.config import EMOTIONS, EmotionClassifierConfig, RayConfig
from eat.emotion.emotion_fan import FACE_BOX, EmotionFAN, box_pixels, face_crops, load_emotion_fan
from eat.io.atomic import write_text_atomic
from eat.io.hashing import settings_digest
from eat.io.reproducible import SUPERVISOR_THREADS, reproducible_torch
from eat.io.tables import write_csv_atomic
from eat.io.torch_files import save_torch_atomic
from eat.io.video import read_aligned_frames, read_frames
from eat.ray_runtime import ray_session

RUN_NAME = "emotion_classifier"   # the Ray Train run's folder under <out>/ray
PRETRAIN_RUN_NAME = "emotion_classifier_stills"   # that of the pre-training on still clips
CHANCE = 1 / len(EMOTIONS)
TRAIN_ACCURACY_SHARE = 0.25
"""Train accuracy (a diagnostic of fit) is measured on a seeded random quarter of the training clips: all 960
cost 27 s of the stage; a quarter estimates it to within about 3 points."""


@dataclass(frozen=True)
class EmotionClip:
    """One MEAD clip in memory: face crops (T, S, S, 3) uint8 RGB at ``input_size`` (:func:`read_face_crops`);
    label = EMOTIONS index."""

    uid: str
    label: int
    frames: np.ndarray


def frames_tensor(frames: np.ndarray) -> torch.Tensor:
    """(..., S, S, 3) uint8 → (..., 3, S, S) float32 in [0, 1]: ``ToTensor`` only, as Emotion-FAN."""
    return torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3).float().div_(255.0)


def emotion_tables(pose_table: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) MEAD rows of the pose-stage table, sorted by uid; an unknown emotion is an error."""
    table = pd.read_parquet(pose_table)
    mead = table[table.dataset == "MEAD"]
    unknown = sorted(set(mead.emotion) - set(EMOTIONS))
    if unknown:
        raise ValueError(f"{pose_table}: MEAD emotions {unknown} are not among {EMOTIONS}; fix the ingest stage")
    train, test = (mead[mead.split == s].sort_values("uid").reset_index(drop=True) for s in ("train", "test"))
    if train.empty:
        raise ValueError(f"{pose_table}: no MEAD clip of the train split; check the preprocessing quarantine")
    return train, test


def judged_face_crops(frames: np.ndarray, size: int) -> np.ndarray:
    """(T, size, size, 3) uint8: the :data:`~eat.emotion.emotion_fan.FACE_BOX` of frames at the resolution of the
    videos the classifier will judge, cut and resized by :func:`~eat.emotion.emotion_fan.face_crops` exactly as
    :func:`eat.emotion.predict.video_probabilities` does. A classifier trained on sharp 256²-sourced crops and
    tested on 64² ones lost a quarter of its accuracy."""
    crops = face_crops(frames_tensor(frames), size)
    return crops.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8).movedim(-3, -1).numpy()


def read_face_crops(path: Path | str, size: int) -> np.ndarray:
    """(T, size, size, 3) uint8: the face box of every frame of an aligned mp4, cut at the stored resolution and
    area-resized (cv2)."""
    frames = read_frames(path)
    x0, y0, x1, y1 = box_pixels(frames.shape[1], frames.shape[2], FACE_BOX)
    return np.stack([cv2.resize(f[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def load_emotion_clips(table: pd.DataFrame, size: int, frame_size: int | None = None) -> list[EmotionClip]:
    """Every row's face crops at ``size``²: from the aligned frames crop_align stores at ``frame_size``² (the
    generated videos' ``signal.image_size``; :func:`judged_face_crops`), or with ``frame_size`` None from the mp4
    at its stored resolution (:func:`read_face_crops`)."""
    clips = []
    for row in tqdm(table.itertuples(index=False), total=len(table), desc="read clips", unit="clip", mininterval=10):
        if frame_size is None:
            if not Path(row.aligned).is_file():
                raise FileNotFoundError(f"clip {row.uid}: {row.aligned} not found; re-run the crop_align stage")
            crops = read_face_crops(row.aligned, size)
        else:
            crops = judged_face_crops(read_aligned_frames(row.aligned_arrays, frame_size), size)
        clips.append(EmotionClip(row.uid, EMOTIONS.index(row.emotion), crops))
    return clips


def clip_order(seed: int, step: int, batch_size: int, n: int) -> np.ndarray:
    """Clip indices of batch ``step``: positions ``[s·B, (s+1)·B)`` of per-epoch permutations seeded (seed, epoch)."""
    positions = np.arange(step * batch_size, (step + 1) * batch_size)
    perms = {e: np.random.default_rng([seed, int(e)]).permutation(n) for e in np.unique(positions // n)}
    return np.array([perms[p // n][p % n] for p in positions])


def jitter(frames: np.ndarray, cfg: EmotionClassifierConfig, rng: np.random.Generator) -> np.ndarray:
    """One random view of a clip's frames (N, S, S, 3) uint8: the same crop (scale and shift up to
    ``crop_jitter`` of the side, width:height stretched by up to e^±``aspect_jitter``) and colour change
    (brightness, contrast, saturation up to ``color_jitter``) on every frame. Beyond Emotion-FAN's flip: with a
    few dozen training identities, the classifier must not key on face shape, placement or skin tone; the stretch
    moves eye height, brow gap and mouth width, the per-identity traits that a new face at rest is misread by
    (docs/probes/emotion_fan)."""
    size = frames.shape[1]
    if cfg.crop_jitter > 0 or cfg.aspect_jitter > 0:
        side = size * (1 - rng.uniform(0, cfg.crop_jitter))
        stretch = np.exp(rng.uniform(-cfg.aspect_jitter, cfg.aspect_jitter)) if cfg.aspect_jitter > 0 else 1.0
        width, height = side * np.sqrt(stretch), side / np.sqrt(stretch)
        x0, y0 = rng.uniform(0, 1, 2) * (size - width, size - height)
        matrix = np.array([[width / size, 0, x0], [0, height / size, y0]], np.float32)
        frames = np.stack([cv2.warpAffine(f, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                          borderMode=cv2.BORDER_REFLECT) for f in frames])
    if cfg.color_jitter > 0:
        x = frames.astype(np.float32)
        b, c, s = 1 + rng.uniform(-cfg.color_jitter, cfg.color_jitter, 3)
        grey = x.mean(axis=-1, keepdims=True)
        x = grey + s * (x - grey)
        x = (x - x.mean()) * c + x.mean()
        frames = np.clip(x * b, 0, 255).astype(np.uint8)
    return frames


def make_batch(clips: Sequence[EmotionClip], cfg: EmotionClassifierConfig, seed: int,
               step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``step``: frames (B, train_frames, 3, S, S) in [0, 1] (time order kept) and labels (B,) int64.

    Each frame is mirrored with probability 1/2: Emotion-FAN's training transform
    (``RandomHorizontalFlip`` then ``ToTensor``, applied image by image; ``basic_code/load.py``), after
    :func:`jitter`.
    """
    rng = np.random.default_rng([seed, step])
    frames, labels = [], []
    for c in clip_order(seed, step, cfg.batch_size, len(clips)):
        clip = clips[c]
        n = len(clip.frames)
        picked = jitter(clip.frames[np.sort(rng.choice(n, cfg.train_frames, replace=n < cfg.train_frames))], cfg, rng)
        flip = rng.random(cfg.train_frames) < 0.5
        frames.append(np.where(flip[:, None, None, None], picked[:, :, ::-1], picked))
        labels.append(clip.label)
    return frames_tensor(np.stack(frames)), torch.tensor(labels)


def run_digest(seed: int, cfg: EmotionClassifierConfig, weights: dict, clips: Sequence[EmotionClip]) -> str:
    """What a checkpoint depends on: seed, config (less the checkpoint and log intervals), initial weights and the
    data."""
    return settings_digest({"seed": seed, "cfg": cfg.model_dump(exclude={"checkpoint_every", "log_every"}),
                            "weights": weights},
                           (part for clip in clips for part in (f"{clip.uid}:{clip.label}", clip.frames)))


class Trainer(ray_train.CheckpointedTrainer):
    """The classifier, its optimiser and step schedule, where its initial weights came from, the step reached,
    every step's loss and the log rows, with save/restore."""

    saved_lists = ("losses", "log")
    saved_parts = ("model", "opt", "schedule")

    def __init__(self, cfg: EmotionClassifierConfig, seed: int, weights_dir: Path | str | None = None,
                 initial: dict[str, torch.Tensor] | None = None):
        self.cfg, self.seed = cfg, seed
        torch.manual_seed(seed)
        self.model, self.weights = load_emotion_fan(cfg, weights_dir)
        if initial is not None:                 # a pre-training phase's weights (train_emotion_classifier)
            self.model.load_state_dict(initial)
        if cfg.optimizer == "sgd":
            self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay)
        else:
            self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        milestones = sorted({int(f * cfg.steps) for f in cfg.lr_milestones})
        self.schedule = torch.optim.lr_scheduler.MultiStepLR(self.opt, milestones, gamma=cfg.lr_gamma)
        self.step = 0
        self.losses: list[float] = []
        self.log: list[dict[str, float]] = []

    def train_step(self, clips: Sequence[EmotionClip], step: int) -> dict[str, float]:
        """One optimiser step of cross-entropy on batch ``step``; its loss is kept and returned as ``total``."""
        frames, labels = make_batch(clips, self.cfg, self.seed, step)
        torch.manual_seed(self.seed * 1_000_003 + step)       # dropout masks: a function of (seed, step)
        loss = F.cross_entropy(self.model(frames), labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.schedule.step()
        self.losses.append(loss.item())
        return {"total": self.losses[-1]}


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train loop of the one worker; ``config`` is built by :func:`fit`. On CPUs, with the thread count and
    deterministic algorithms of the supervisors (:func:`~eat.io.reproducible.reproducible_torch`)."""
    import ray  # local: Ray is heavy and only the training worker needs it

    cfg, seed = EmotionClassifierConfig(**config["cfg"]), config["seed"]
    with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):
        clips: list[EmotionClip] = ray.get(config["clips"])
        initial = ray.get(config["initial"]) if config["initial"] is not None else None
        trainer = Trainer(cfg, seed, config["weights_dir"], initial)
        if trainer.weights != config["weights"]:
            raise RuntimeError(f"the training worker's initial weights ({trainer.weights}) are not the driver's "
                               f"({config['weights']}): give every node the same emotion_fan weights file")
        ray_train.train_single_worker(trainer, clips, cfg, config, config["name"])


def training_ray(ray_config: RayConfig) -> AbstractContextManager[None]:
    """The Ray session the classifier trains in (``ray.workers`` CPUs, at least its threads). The stage opens it
    around the rendering of the still clips as well, so that one local Ray serves both."""
    return ray_session(ray_config.address, num_cpus=max(ray_config.workers, SUPERVISOR_THREADS))


def fit(trainer: Trainer, clips: list[EmotionClip], storage: Path, ray_config: RayConfig, digest: str,
        weights_dir: Path | str | None, name: str = RUN_NAME,
        initial: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Run (or resume) the training of ``trainer`` (as built: step 0, from ``initial`` weights when given) on Ray
    Train, checkpoints in ``storage/name``; returns the final state."""
    import ray  # local: see train_worker

    with training_ray(ray_config):
        return ray_train.fit(
            train_worker, {"cfg": trainer.cfg.model_dump(), "seed": trainer.seed, "weights": trainer.weights,
                           "weights_dir": str(Path(weights_dir).resolve()) if weights_dir else None,
                           "clips": ray.put(clips), "initial": ray.put(initial) if initial is not None else None,
                           "name": name},
            storage=storage, name=name, digest=digest, steps=trainer.cfg.steps, num_workers=1,
            threads_per_worker=SUPERVISOR_THREADS, ray=ray_config, use_gpu=False)


def predict(model: EmotionFAN, clips: Sequence[EmotionClip]) -> np.ndarray:
    """(C,) predicted EMOTIONS index of each clip from all its frames at once (Emotion-FAN's evaluation)."""
    model.eval()
    with torch.inference_mode():
        return np.array([int(model(frames_tensor(c.frames)[None]).argmax(1)) for c in clips], np.int64)


def evaluate_emotion(model: EmotionFAN, clips: Sequence[EmotionClip]) -> dict:
    """Accuracy overall and per emotion (None where no clip has it), chance, and the confusion matrix
    (rows: true emotion, columns: predicted, both in EMOTIONS order)."""
    if not clips:
        return {"clips": 0, "chance": round(CHANCE, 4)}
    truth = np.array([c.label for c in clips])
    pred = predict(model, clips)
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), np.int64)
    np.add.at(confusion, (truth, pred), 1)
    by_emotion = {e: (round(float(np.mean(pred[truth == i] == i)), 4) if (truth == i).any() else None)
                  for i, e in enumerate(EMOTIONS)}
    present = [v for v in by_emotion.values() if v is not None]
    return {"clips": len(clips), "accuracy": round(float(np.mean(pred == truth)), 4),
            "mean_over_emotions": round(float(np.mean(present)), 4), "chance": round(CHANCE, 4),
            "accuracy_by_emotion": by_emotion, "emotions": list(EMOTIONS), "confusion": confusion.tolist()}


def protocol_clips(table: pd.DataFrame, clips: Sequence[EmotionClip]) -> list[EmotionClip]:
    """The clips of the paper's evaluation set among ``clips`` (rows of ``table``, same order): intensity level 3
    of every emotion and all neutral clips (docs/paper_notes.md §7)."""
    keep = ((table.level == 3) | (table.emotion == "neutral")).to_numpy()
    return [clip for clip, k in zip(clips, keep, strict=True) if k]


def save_emotion_classifier(trainer: Trainer, path: Path | str) -> None:
    """``model.pt``: the classifier's weights, its config, the class order and where its initial weights came from.
    The config leaves out ``log_every``, as :func:`eat.sync.train.save_sync_expert` does."""
    save_torch_atomic({"config": trainer.model.cfg.model_dump(exclude={"log_every"}), "emotions": list(EMOTIONS),
                       "weights": trainer.weights, "steps": trainer.step, "state_dict": trainer.model.state_dict()},
                      path)


def load_emotion_classifier(path: Path | str, device: str | torch.device = "cpu") -> EmotionFAN:
    """The trained classifier of a ``model.pt`` written by :func:`save_emotion_classifier`, in eval mode."""
    saved = torch.load(path, map_location=device, weights_only=True)
    if tuple(saved["emotions"]) != EMOTIONS:
        raise ValueError(f"{path}: classes {saved['emotions']} are not in eat.config.EMOTIONS order; retrain it")
    model = EmotionFAN(EmotionClassifierConfig(**saved["config"])).to(device)
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def pretrain_on_stills(cfg: EmotionClassifierConfig, seed: int, stills: Sequence[EmotionClip], storage: Path,
                       ray_config: RayConfig, weights_dir: Path | str | None,
                       metrics_path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """The pre-training phase: ``cfg.stills.pretrain_steps`` steps of the stage's recipe (its own lr schedule) on the
    still clips alone, as Emotion-FAN's backbone learns faces on FER+ before its video set; the log goes to
    ``pretrain_log.csv`` beside the metrics (a header only when there is no such phase). Returns its summary (with
    the run's ``digest``) and final weights, or ``({}, None)`` without still clips or steps."""
    if not stills or not cfg.stills.pretrain_steps:
        write_csv_atomic([], metrics_path.with_name("pretrain_log.csv"), columns=["step", "total", "seconds_per_step"])
        return {}, None
    pre = Trainer(cfg.model_copy(update={"steps": cfg.stills.pretrain_steps}), seed, weights_dir)
    digest = run_digest(seed, pre.cfg, pre.weights, stills)
    pre.load_state_dict(fit(pre, list(stills), storage, ray_config, digest, weights_dir, name=PRETRAIN_RUN_NAME))
    write_csv_atomic(pre.log, metrics_path.with_name("pretrain_log.csv"))
    tail = max(1, len(pre.losses) // 10)
    return ({"digest": digest, "still_clips": len(stills), "steps": pre.step,
             "train_loss_first": round(float(np.mean(pre.losses[:tail])), 4),
             "train_loss_last": round(float(np.mean(pre.losses[-tail:])), 4)}, pre.model.state_dict())


def train_emotion_classifier(cfg: EmotionClassifierConfig, seed: int, pose_table: Path | str, out_dir: Path | str,
                             metrics_path: Path | str, ray_config: RayConfig, weights_dir: Path | str | None = None,
                             frame_size: int | None = None, stills: Sequence[EmotionClip] = ()) -> dict:
    """Stage ``train_emotion_classifier``: train (or resume) on MEAD's train split and ``stills``, save ``model.pt``,
    evaluate on MEAD's test split.

    ``ray_config``: where the training runs (params.yaml ``ray``). ``weights_dir``: where
    :func:`~eat.emotion.emotion_fan.load_emotion_fan` looks for the Emotion-FAN file. ``frame_size``: the
    resolution of the videos it will judge (:func:`read_face_crops`); None = the stored aligned frames.
    ``stills``: still clips of other identities, trained on alone first (:func:`pretrain_on_stills`), then mixed
    into the training clips (:mod:`eat.synth.stills`).
    Returns the metrics, with ``"timing"``.
    """
    start = time.perf_counter()
    out_dir, metrics_path = Path(out_dir), Path(metrics_path)
    train_table, test_table = emotion_tables(pose_table)
    train = load_emotion_clips(train_table, cfg.input_size, frame_size)
    held = load_emotion_clips(test_table, cfg.input_size, frame_size)
    loaded = time.perf_counter()

    storage, mixed = out_dir / "ray", [*train, *stills]
    with training_ray(ray_config):   # one for both phases (and the stage's rendering of the still clips)
        pretraining, initial = pretrain_on_stills(cfg, seed, stills, storage, ray_config, weights_dir, metrics_path)
        trainer = Trainer(cfg, seed, weights_dir, initial)
        digest = run_digest(seed, cfg, {**trainer.weights, "pretraining": pretraining.get("digest")}, mixed)
        resumed_at = ray_train.latest_checkpoint(storage / RUN_NAME, digest)[1]
        state = fit(trainer, mixed, storage, ray_config, digest, weights_dir, initial=initial)
    trained = time.perf_counter()
    trainer.load_state_dict(state)
    save_emotion_classifier(trainer, out_dir / "model.pt")
    write_csv_atomic(trainer.log, metrics_path.with_name("train_log.csv"))

    with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):
        heldout = evaluate_emotion(trainer.model, held)
        protocol = evaluate_emotion(trainer.model, protocol_clips(test_table, held))
        share = max(1, round(TRAIN_ACCURACY_SHARE * len(train)))
        sample = np.sort(np.random.default_rng(seed).choice(len(train), share, replace=False))
        train_accuracy = evaluate_emotion(trainer.model, [train[i] for i in sample])["accuracy"]
    tail = max(1, len(trainer.losses) // 10)
    metrics = {
        "model": "Emotion-FAN", "weights": trainer.weights, "steps": trainer.step, "resumed_at_step": resumed_at,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "train_clips": len(train),
        "train_clips_by_emotion": {e: sum(c.label == i for c in train) for i, e in enumerate(EMOTIONS)},
        "still_clips": len(stills),
        "pretraining": {k: v for k, v in pretraining.items() if k != "digest"},
        "train_loss_first": round(float(np.mean(trainer.losses[:tail])), 4),
        "train_loss_last": round(float(np.mean(trainer.losses[-tail:])), 4),
        "train_accuracy": train_accuracy,
        "train_accuracy_clips": len(sample),
        "heldout": heldout,
        "heldout_protocol": protocol,
        "acc_emo_ground_truth": protocol.get("mean_over_emotions"),
        "acc_emo_chance": round(CHANCE, 4),
    }
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    timing = {"load_seconds": round(loaded - start, 1), "train_seconds": round(trained - loaded, 1),
              "total_seconds": round(time.perf_counter() - start, 1),
              "seconds_per_step": round(float(np.mean([r["seconds_per_step"] for r in trainer.log])), 4),
              "peak_rss_mib_worker": state.get("peak_rss_mib"), "peak_rss_mib_driver": ray_train.peak_rss_mib()}
    write_text_atomic(metrics_path.with_name("timing.json"), json.dumps(timing, indent=2) + "\n")
    return {**metrics, "timing": timing}
