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
``torch.manual_seed`` of (seed, s), one torch thread, deterministic algorithms; the state (weights,
SGD, schedule, step, losses) is checkpointed every ``checkpoint_every`` steps to
``<out>/train_state.pt`` under a digest of the seed, config, initial weights and data.

Held-out evaluation (:func:`evaluate_emotion`): every frame of a test clip at once (Emotion-FAN's
evaluation), accuracy overall, per emotion and their mean over the emotions, the confusion matrix, and chance
(1/8) beside them, on every test clip (``heldout``) and on the paper's evaluation set, level 3 and neutral
(``heldout_protocol``). The latter's mean over the 8 emotions is the "Ground Truth" row of Acc_emo (Table 1,
``acc_emo_ground_truth``), i.e. the classifier on real test videos.

Outputs: ``<out>/model.pt`` (:func:`save_emotion_classifier`: ``{"config", "emotions", "weights",
"steps", "state_dict"}``, ``torch.load(weights_only=True)``), ``<out>/train_state.pt``, the metrics
JSON (deterministic numbers only) and ``timing.json`` beside it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from eat.config import EMOTIONS, EmotionClassifierConfig
from eat.emotion.emotion_fan import FACE_BOX, EmotionFAN, box_pixels, face_crops, load_emotion_fan
from eat.io.atomic import write_text_atomic
from eat.io.hashing import settings_digest
from eat.io.reproducible import SUPERVISOR_THREADS, reproducible_torch
from eat.io.torch_files import save_torch_atomic
from eat.io.train_state import restore_training_state, save_training_state
from eat.io.video import read_aligned_frames, read_frames

STATE_FILE = "train_state.pt"
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
    """What a saved state depends on: seed, config (less the checkpoint interval), initial weights and the data."""
    return settings_digest({"seed": seed, "cfg": cfg.model_dump(exclude={"checkpoint_every"}), "weights": weights},
                           (part for clip in clips for part in (f"{clip.uid}:{clip.label}", clip.frames)))


@dataclass
class EmotionTrainState:
    """What a checkpoint holds: the classifier, SGD, its step schedule, the step reached and the loss per step."""

    model: EmotionFAN
    weights: dict
    optimiser: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    step: int
    losses: list[float]

    @classmethod
    def new(cls, cfg: EmotionClassifierConfig, seed: int, weights_dir: Path | str | None = None) -> EmotionTrainState:
        torch.manual_seed(seed)
        model, weights = load_emotion_fan(cfg, weights_dir)
        if cfg.optimizer == "sgd":
            optimiser = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                        weight_decay=cfg.weight_decay)
        else:
            optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        milestones = sorted({int(f * cfg.steps) for f in cfg.lr_milestones})
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones, gamma=cfg.lr_gamma)
        return cls(model, weights, optimiser, schedule, 0, [])

    def _parts(self) -> dict:
        return {"model": self.model, "optimiser": self.optimiser, "schedule": self.schedule}

    def save(self, path: Path, digest: str) -> None:
        save_training_state(path, digest, self.step, self.losses, self._parts())

    def restore(self, path: Path, digest: str) -> bool:
        """Load ``path`` if it exists and was written for ``digest``; True if resumed."""
        resumed = restore_training_state(path, digest, self._parts())
        if resumed is not None:
            self.step, self.losses = resumed
        return resumed is not None


def train_steps(state: EmotionTrainState, clips: Sequence[EmotionClip], cfg: EmotionClassifierConfig, seed: int,
                until: int, checkpoint: Callable[[EmotionTrainState], None] | None = None) -> None:
    """Run SGD steps ``state.step … until − 1`` of cross-entropy; ``checkpoint(state)`` every
    ``checkpoint_every`` steps and at ``until``."""
    state.model.train()
    with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):
        for step in tqdm(range(state.step, until), desc="train_emotion_classifier", unit="step", mininterval=10,
                         initial=state.step, total=until):
            frames, labels = make_batch(clips, cfg, seed, step)
            torch.manual_seed(seed * 1_000_003 + step)       # dropout masks: a function of (seed, step)
            loss = F.cross_entropy(state.model(frames), labels)
            state.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            state.optimiser.step()
            state.schedule.step()
            state.losses.append(loss.item())
            state.step = step + 1
            if checkpoint is not None and (state.step % cfg.checkpoint_every == 0 or state.step == until):
                checkpoint(state)


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


def save_emotion_classifier(state: EmotionTrainState, path: Path | str) -> None:
    """``model.pt``: the classifier's weights, its config, the class order and where its initial weights came from."""
    save_torch_atomic({"config": state.model.cfg.model_dump(), "emotions": list(EMOTIONS), "weights": state.weights,
                       "steps": state.step, "state_dict": state.model.state_dict()}, path)


def load_emotion_classifier(path: Path | str, device: str | torch.device = "cpu") -> EmotionFAN:
    """The trained classifier of a ``model.pt`` written by :func:`save_emotion_classifier`, in eval mode."""
    saved = torch.load(path, map_location=device, weights_only=True)
    if tuple(saved["emotions"]) != EMOTIONS:
        raise ValueError(f"{path}: classes {saved['emotions']} are not in eat.config.EMOTIONS order; retrain it")
    model = EmotionFAN(EmotionClassifierConfig(**saved["config"])).to(device)
    model.load_state_dict(saved["state_dict"])
    return model.eval()


def train_emotion_classifier(cfg: EmotionClassifierConfig, seed: int, pose_table: Path | str, out_dir: Path | str,
                             metrics_path: Path | str, stop_after: int | None = None,
                             weights_dir: Path | str | None = None, frame_size: int | None = None) -> dict:
    """Stage ``train_emotion_classifier``: train (or resume) on MEAD's train split, save ``model.pt``, evaluate
    on its test split.

    ``stop_after``: end after that many steps (checkpoint written, no model or metrics), as a run
    killed right after a checkpoint would; returns ``{"stopped_at": step}`` then. ``weights_dir``:
    where :func:`~eat.emotion.emotion_fan.load_emotion_fan` looks for the Emotion-FAN file. ``frame_size``:
    the resolution of the videos it will judge (:func:`read_face_crops`); None = the stored aligned frames.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    train_table, test_table = emotion_tables(pose_table)
    train = load_emotion_clips(train_table, cfg.input_size, frame_size)
    held = load_emotion_clips(test_table, cfg.input_size, frame_size)
    loaded = time.perf_counter()

    state = EmotionTrainState.new(cfg, seed, weights_dir)
    digest = run_digest(seed, cfg, state.weights, train)
    resumed_at = state.step if state.restore(out_dir / STATE_FILE, digest) else 0
    until = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    train_steps(state, train, cfg, seed, until, checkpoint=lambda s: s.save(out_dir / STATE_FILE, digest))
    if state.step < cfg.steps:
        return {"stopped_at": state.step}
    trained = time.perf_counter()
    save_emotion_classifier(state, out_dir / "model.pt")

    with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):
        heldout = evaluate_emotion(state.model, held)
        protocol = evaluate_emotion(state.model, protocol_clips(test_table, held))
        share = max(1, round(TRAIN_ACCURACY_SHARE * len(train)))
        sample = np.sort(np.random.default_rng(seed).choice(len(train), share, replace=False))
        train_accuracy = evaluate_emotion(state.model, [train[i] for i in sample])["accuracy"]
    tail = max(1, len(state.losses) // 10)
    metrics = {
        "model": "Emotion-FAN", "weights": state.weights, "steps": state.step, "resumed_at_step": resumed_at,
        "parameters": sum(p.numel() for p in state.model.parameters()),
        "train_clips": len(train),
        "train_clips_by_emotion": {e: sum(c.label == i for c in train) for i, e in enumerate(EMOTIONS)},
        "train_loss_first": round(float(np.mean(state.losses[:tail])), 4),
        "train_loss_last": round(float(np.mean(state.losses[-tail:])), 4),
        "train_accuracy": train_accuracy,
        "train_accuracy_clips": len(sample),
        "heldout": heldout,
        "heldout_protocol": protocol,
        "acc_emo_ground_truth": protocol.get("mean_over_emotions"),
        "acc_emo_chance": round(CHANCE, 4),
    }
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    timing = {"load_seconds": round(loaded - start, 1), "train_seconds": round(trained - loaded, 1),
              "total_seconds": round(time.perf_counter() - start, 1)}
    write_text_atomic(Path(metrics_path).with_name("timing.json"), json.dumps(timing, indent=2) + "\n")
    return {**metrics, "timing": timing}
