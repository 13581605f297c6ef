"""Training of the ``ctc`` backend's recogniser (stage ``train_speech_recognizer``).

Data: the clips of the ``train`` split with a transcript (``text`` not empty; LRW carrier
phrases included), each also resampled by every ``speed_perturb`` factor (speed perturbation,
Ko et al., 2015: factor 1.2 = 20 % faster and higher; on the synthetic data it stands in for the
rate and pitch changes of the emotions). Held out: ``val`` and ``test`` clips with a transcript,
scored by greedy decoding and corpus CER (:mod:`eat.features.alphabet`). Clips whose audio fails
the checks of :mod:`eat.features.clip_audio` are skipped and listed in the metrics.

Loss: CTC on log-softmax outputs, blank = index 28 (DeepSpeech's); AdamW with a one-cycle
learning-rate schedule peaking at ``lr``; gradients clipped to norm :data:`CLIP_NORM`.

Training runs on the shared Ray Train loop (:mod:`eat.ray_train`, as the latent model, A2ET and the
adaptation): ``num_workers`` data-parallel workers of ``threads_per_worker`` torch threads each split every
global batch of ``batch_size`` utterances (worker ``r`` of ``W`` takes positions ``r, r + W, …``) and
average their gradients before the clip and the update, so ``W`` workers take the same steps as one
worker with the whole batch, ``W`` times faster where the cores are there. The default profile runs two
workers of one thread: one thread gives 5.2 steps/s of the default model and two threads the same, so
the second core would otherwise idle.

Deterministic and resumable. Batch ``s`` is a function of (seed, s) only: positions
``[s·B, (s+1)·B)`` of the concatenated per-epoch permutations, epoch ``e`` drawn from a
generator seeded with ``seed + e``; dropout masks come from ``torch.manual_seed((seed + s)·W + r)``.
Every ``checkpoint_every`` steps the state (weights, optimiser, schedule, step, loss log) is a Ray
Train checkpoint under ``out_dir/ray``, keyed by a digest of the seed, the config and the training set;
a run killed after a checkpoint resumes from it and ends with the same weights as an uninterrupted one
(tested bit for bit); checkpoints of another digest are deleted. Data loading happens once, in the
driver, before the first step.

Outputs in ``out_dir``: ``model.pt`` (inference checkpoint, :func:`~eat.features.recognizer.save_recognizer`)
and ``ray/`` (the checkpoints); the metrics JSON (``substitute: true``, ``backend: "ctc"``, train loss,
train and held-out CER, wall time) and ``train_log.csv`` beside it (loss per ``log_every`` steps).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.signal
import torch

from eat import ray_train
from eat.config import SpeechRecognizerConfig
from eat.features.alphabet import BLANK, character_error_rate, encode, greedy_decode, normalise_text
from eat.features.clip_audio import AudioRejected, read_clip_audio, read_normalised
from eat.features.config import FeatureParams
from eat.features.recognizer import CTCRecognizer, recognizer_input, save_recognizer
from eat.io.atomic import write_text_atomic
from eat.io.hashing import settings_digest
from eat.io.reproducible import reproducible_torch
from eat.io.tables import write_csv_atomic
from eat.ray_runtime import ray_session

log = logging.getLogger(__name__)

CLIP_NORM = 1.0
HELD_OUT_SPLITS = ("val", "test")
_N_SAMPLES = 4   # decoded examples kept in the metrics file


@dataclass(frozen=True)
class Example:
    """One training or evaluation utterance: features (n_mels, S), labels (L,) int64."""

    uid: str
    dataset: str
    text: str
    original: bool            # not augmented
    features: np.ndarray
    labels: np.ndarray


def _speed(samples: np.ndarray, factor: float, hop: int) -> np.ndarray:
    """Resample so that the audio plays ``factor`` times faster; trimmed to whole 20 ms steps."""
    if factor != 1.0:
        ratio = Fraction(factor).limit_denominator(50)
        samples = scipy.signal.resample_poly(samples, ratio.denominator, ratio.numerator).astype(np.float32)
    return samples[: len(samples) // hop * hop]


def load_examples(table: pd.DataFrame, params: FeatureParams, augment: bool) -> tuple[list[Example], list[str]]:
    """Examples of every row with a transcript (× every ``speed_perturb`` factor if ``augment``) and the
    rejected rows, with reasons."""
    examples, rejected = [], []
    cfg, hop = params.speech_recognizer, params.speech_hop
    for row in table.itertuples(index=False):
        if not normalise_text(row.text):
            continue
        try:
            samples = read_clip_audio(row.audio_norm, int(row.n_frames), params.signal, params.audio_features)
        except AudioRejected as why:
            rejected.append(f"{row.uid}: {why}")
            continue
        for factor in cfg.speed_perturb if augment else [1.0]:
            features = recognizer_input(_speed(samples, factor, hop), cfg, params.signal.audio_rate, hop)
            examples.append(Example(row.uid, row.dataset, row.text, factor == 1.0, features, encode(row.text)))
    return examples, rejected


def _digest(params: FeatureParams, train: list[Example]) -> str:
    """What a saved training state depends on: seed, configs and the exact training set."""
    return settings_digest({"seed": params.seed, "audio_rate": params.signal.audio_rate,
                            "recognizer": params.speech_recognizer.model_dump()},
                           (part for ex in train for part in (ex.uid, ex.labels, ex.features)))


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> list[int]:
    """Indices of batch ``step``: a pure function of (step, seed), so resumed runs see the same data."""
    out, epoch_cache = [], {}
    for pos in range(step * batch_size, (step + 1) * batch_size):
        epoch = pos // n
        if epoch not in epoch_cache:
            epoch_cache[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        out.append(epoch_cache[epoch][pos % n])
    return out


def collate(examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Zero-padded features (B, n_mels, S_max), lengths (B,), concatenated labels, label lengths (B,)."""
    lengths = torch.tensor([e.features.shape[1] for e in examples])
    x = torch.zeros(len(examples), examples[0].features.shape[0], int(lengths.max()))
    for i, e in enumerate(examples):
        x[i, :, : e.features.shape[1]] = torch.from_numpy(e.features)
    labels = torch.from_numpy(np.concatenate([e.labels for e in examples]))
    return x, lengths, labels, torch.tensor([len(e.labels) for e in examples])


def transcribe(model: CTCRecognizer, examples: list[Example]) -> list[str]:
    """Greedy transcripts, one utterance at a time (no padding: as the feature stage runs it)."""
    model.eval()
    with reproducible_torch(threads=1), torch.inference_mode():
        return [greedy_decode(model(torch.from_numpy(e.features)[None], torch.tensor([e.features.shape[1]]))[0]
                              .numpy()) for e in examples]


class RecognizerTrainer(ray_train.CheckpointedTrainer):
    """Model, AdamW and one-cycle schedule of one worker, with save/restore of the whole state."""

    saved_parts = ("model", "optimiser", "schedule")

    def __init__(self, cfg: SpeechRecognizerConfig, seed: int):
        torch.manual_seed(seed)
        self.model = CTCRecognizer(cfg)
        self.optimiser = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(self.optimiser, max_lr=cfg.lr, total_steps=cfg.steps,
                                                            pct_start=0.15)
        self.step = 0
        self.log: list[dict[str, float]] = []


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train loop of one worker; ``config`` is built by :func:`fit`."""
    import ray  # local: Ray is heavy and only the training workers need it
    import ray.train

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    cfg, seed = SpeechRecognizerConfig(**config["recognizer"]), config["seed"]
    train: list[Example] = ray.get(config["examples"])
    with reproducible_torch(threads=cfg.threads_per_worker, deterministic=True):
        trainer = RecognizerTrainer(cfg, seed)
        state = ray_train.resume_state(config)
        if state is not None:
            trainer.load_state_dict(state)
        ctc = torch.nn.CTCLoss(blank=BLANK, zero_infinity=True)
        trainer.model.train()

        def step_fn(step: int) -> dict[str, float]:
            mine = batch_indices(step, cfg.batch_size, len(train), seed)[rank::world]
            x, lengths, labels, label_lengths = collate([train[i] for i in mine])
            torch.manual_seed((seed + step) * world + rank)
            log_probs = trainer.model(x, lengths).log_softmax(-1).transpose(0, 1)   # (S, B, 29) for CTCLoss
            loss = ctc(log_probs, labels, lengths, label_lengths)
            ray_train.optimiser_step(loss, trainer.model, trainer.model.parameters(), trainer.optimiser,
                                     CLIP_NORM, world)
            trainer.schedule.step()
            return {"total": loss.item()}

        ray_train.run_steps(trainer, cfg.steps, step_fn, log_every=cfg.log_every,
                            checkpoint_every=cfg.checkpoint_every, digest=config["digest"], rank=rank,
                            desc="train_speech_recognizer")


def fit(params: FeatureParams, train: list[Example], storage: Path) -> dict[str, Any]:
    """Run (or resume) Ray Train on ``train``; returns rank 0's final state (``model``, ``log``, ``step``, …)."""
    import ray  # local: see train_worker

    cfg = params.speech_recognizer
    with ray_session(params.ray.address, num_cpus=max(params.ray.workers, cfg.num_workers * cfg.threads_per_worker)):
        return ray_train.fit(
            train_worker, {"recognizer": cfg.model_dump(), "seed": params.seed, "examples": ray.put(train)},
            storage=storage, name="recognizer", digest=_digest(params, train), steps=cfg.steps,
            num_workers=cfg.num_workers, threads_per_worker=cfg.threads_per_worker, ray=params.ray)


def train_recognizer(params: FeatureParams, normalised: Path | str, out_dir: Path | str,
                     metrics_path: Path | str) -> dict:
    """Train (or resume) the recogniser on the training clips; write model.pt, the metrics JSON and
    ``train_log.csv`` beside it."""
    start = time.perf_counter()
    cfg, out_dir, metrics_path = params.speech_recognizer, Path(out_dir), Path(metrics_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = read_normalised(normalised)
    train, rejected = load_examples(table[table.split == "train"], params, augment=True)
    held, rejected_held = load_examples(table[table.split.isin(HELD_OUT_SPLITS)], params, augment=False)
    if not train:
        raise ValueError(f"{normalised}: no training clip with a transcript (split 'train', non-empty text)")
    for why in rejected + rejected_held:
        log.warning("skipping %s", why)
    _, resumed_at = ray_train.latest_checkpoint(out_dir / "ray" / "recognizer", _digest(params, train))
    loaded = time.perf_counter()
    state = fit(params, train, out_dir / "ray")
    trained = time.perf_counter()
    model = CTCRecognizer(cfg)
    model.load_state_dict(state["model"])
    save_recognizer(model, cfg, params.signal.audio_rate, params.speech_hop, out_dir / "model.pt")
    write_csv_atomic(state["log"], metrics_path.with_name("train_log.csv"))
    metrics = _metrics(model, state, train, held, rejected + rejected_held, resumed_at)
    metrics["seconds"] = {"load": round(loaded - start, 1), "train": round(trained - loaded, 1),
                          "total": round(time.perf_counter() - start, 1)}
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2) + "\n")
    return metrics


def _cer_by_dataset(examples: list[Example], hyps: list[str]) -> dict[str, float]:
    out = {}
    for name in sorted({e.dataset for e in examples}):
        pairs = [(e.text, h) for e, h in zip(examples, hyps, strict=True) if e.dataset == name]
        out[name] = round(character_error_rate(*zip(*pairs, strict=True)), 4)
    return out


def _metrics(model: CTCRecognizer, state: dict[str, Any], train: list[Example], held: list[Example],
             rejected: list[str], resumed_at: int) -> dict:
    originals = [e for e in train if e.original]
    losses = [row["total"] for row in state["log"]]      # rank 0's loss, averaged over each log_every steps
    tail = max(1, len(losses) // 10)
    metrics: dict = {
        "backend": "ctc", "substitute": True, "substitute_for": "DeepSpeech 0.1.0",
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": int(state["step"]), "resumed_at_step": resumed_at,
        "train_examples": len(train), "train_clips": len({e.uid for e in train}),
        "train_loss_first": round(float(np.mean(losses[:tail])), 4),
        "train_loss": round(float(np.mean(losses[-tail:])), 4),
        "train_cer": (round(character_error_rate([e.text for e in originals], transcribe(model, originals)), 4)
                      if originals else None),
        "rejected_clips": rejected,
    }
    if held:
        hyps = transcribe(model, held)
        metrics |= {"heldout_clips": len(held),
                    "heldout_cer": round(character_error_rate([e.text for e in held], hyps), 4),
                    "heldout_cer_by_dataset": _cer_by_dataset(held, hyps),
                    "heldout_samples": [{"ref": normalise_text(e.text), "hyp": h} for e, h in
                                        list(zip(held, hyps, strict=True))[:: max(1, len(held) // _N_SAMPLES)]]}
    else:
        metrics |= {"heldout_clips": 0, "heldout_cer": None}
    return metrics
