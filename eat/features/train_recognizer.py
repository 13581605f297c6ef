"""Training of the ``ctc`` backend's recogniser (stage ``train_speech_recognizer``).

Data: the clips of the ``train`` split with a transcript (``text`` not empty; LRW carrier
phrases included), each also resampled by every ``speed_perturb`` factor (speed perturbation,
Ko et al., 2015: factor 1.2 = 20 % faster and higher; on the synthetic data it stands in for the
rate and pitch changes of the emotions). Held out: ``val`` and ``test`` clips with a transcript,
scored by greedy decoding and corpus CER (:mod:`eat.features.alphabet`). Clips whose audio fails
the checks of :mod:`eat.features.clip_audio` are skipped and listed in the metrics.

Loss: CTC on log-softmax outputs, blank = index 28 (DeepSpeech's); AdamW with a one-cycle
learning-rate schedule peaking at ``lr``; gradients clipped to norm :data:`CLIP_NORM`.

Deterministic and resumable. Batch ``s`` is a function of (seed, s) only: positions
``[s·B, (s+1)·B)`` of the concatenated per-epoch permutations, epoch ``e`` drawn from a
generator seeded with ``seed + e``; dropout masks come from ``torch.manual_seed(seed + s)``.
So a run killed after a checkpoint and resumed takes the same batches and masks as an
uninterrupted one (tested bit for bit). Every ``checkpoint_every`` steps the training state
(weights, optimiser, schedule, step, losses) is written atomically to ``train_state.pt``, keyed
by a digest of the seed, the config and the training set; a state with another digest is
ignored (training restarts). Data loading is single-threaded and happens once, before the
first step.

Torch runs on one thread. Measured on the 2-core machine: one thread gives 5.2 steps/s of the
default model, two threads the same when idle, but 0.03–0.2 steps/s when another process
competes for the cores (OpenMP threads waiting for each other); one thread also makes the
result independent of the machine's core count.

Outputs in ``out_dir``: ``model.pt`` (inference checkpoint, :func:`~eat.features.recognizer.save_recognizer`)
and ``train_state.pt``; the metrics JSON (``substitute: true``, ``backend: "ctc"``, train loss,
train and held-out CER, wall time).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal
import torch
from tqdm import tqdm

from eat.features.alphabet import BLANK, character_error_rate, encode, greedy_decode, normalise_text
from eat.features.clip_audio import AudioRejected, read_clip_audio, read_normalised
from eat.features.config import FeatureParams
from eat.features.recognizer import CTCRecognizer, recognizer_input, save_recognizer
from eat.io.atomic import write_text_atomic
from eat.io.hashing import settings_digest
from eat.io.reproducible import reproducible_torch
from eat.io.train_state import restore_training_state, save_training_state

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


@dataclass
class TrainState:
    """What a checkpoint holds: the step reached, the objects to restore and the loss history."""

    model: CTCRecognizer
    optimiser: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    step: int
    losses: list[float]

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


def new_state(params: FeatureParams) -> TrainState:
    cfg = params.speech_recognizer
    torch.manual_seed(params.seed)
    model = CTCRecognizer(cfg)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.15)
    return TrainState(model, optimiser, schedule, 0, [])


def train_steps(state: TrainState, train: list[Example], params: FeatureParams, until: int,
                checkpoint: Callable[[TrainState], None] | None = None) -> None:
    """Run optimiser steps ``state.step … until − 1``; ``checkpoint(state)`` every ``checkpoint_every`` steps."""
    cfg = params.speech_recognizer
    ctc = torch.nn.CTCLoss(blank=BLANK, zero_infinity=True)
    state.model.train()
    with reproducible_torch(threads=1, deterministic=True):
        for step in tqdm(range(state.step, until), desc="train_speech_recognizer", unit="step", mininterval=10,
                         initial=state.step, total=until):
            x, lengths, labels, label_lengths = collate(
                [train[i] for i in batch_indices(step, cfg.batch_size, len(train), params.seed)])
            torch.manual_seed(params.seed + step)
            log_probs = state.model(x, lengths).log_softmax(-1).transpose(0, 1)   # (S, B, 29) for CTCLoss
            loss = ctc(log_probs, labels, lengths, label_lengths)
            state.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), CLIP_NORM)
            state.optimiser.step()
            state.schedule.step()
            state.losses.append(loss.item())
            state.step = step + 1
            if checkpoint is not None and (state.step % cfg.checkpoint_every == 0 or state.step == until):
                checkpoint(state)


def train_recognizer(params: FeatureParams, normalised: Path | str, out_dir: Path | str,
                     metrics_path: Path | str) -> dict:
    """Train (or resume) the recogniser on the training clips, write model.pt and the metrics JSON."""
    start = time.perf_counter()
    cfg, out_dir = params.speech_recognizer, Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = read_normalised(normalised)
    train, rejected = load_examples(table[table.split == "train"], params, augment=True)
    held, rejected_held = load_examples(table[table.split.isin(HELD_OUT_SPLITS)], params, augment=False)
    if not train:
        raise ValueError(f"{normalised}: no training clip with a transcript (split 'train', non-empty text)")
    for why in rejected + rejected_held:
        log.warning("skipping %s", why)
    digest = _digest(params, train)
    state = new_state(params)
    resumed_at = state.step if state.restore(out_dir / "train_state.pt", digest) else 0
    loaded = time.perf_counter()
    train_steps(state, train, params, cfg.steps, checkpoint=lambda s: s.save(out_dir / "train_state.pt", digest))
    trained = time.perf_counter()
    save_recognizer(state.model, cfg, params.signal.audio_rate, params.speech_hop, out_dir / "model.pt")
    metrics = _metrics(state, train, held, rejected + rejected_held, resumed_at)
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


def _metrics(state: TrainState, train: list[Example], held: list[Example], rejected: list[str],
             resumed_at: int) -> dict:
    originals = [e for e in train if e.original]
    tail = max(1, len(state.losses) // 10)
    metrics: dict = {
        "backend": "ctc", "substitute": True, "substitute_for": "DeepSpeech 0.1.0",
        "parameters": sum(p.numel() for p in state.model.parameters()),
        "steps": state.step, "resumed_at_step": resumed_at,
        "train_examples": len(train), "train_clips": len({e.uid for e in train}),
        "train_loss_first": round(float(np.mean(state.losses[:tail])), 4),
        "train_loss": round(float(np.mean(state.losses[-tail:])), 4),
        "train_cer": (round(character_error_rate([e.text for e in originals], transcribe(state.model, originals)), 4)
                      if originals else None),
        "rejected_clips": rejected,
    }
    if held:
        hyps = transcribe(state.model, held)
        metrics |= {"heldout_clips": len(held),
                    "heldout_cer": round(character_error_rate([e.text for e in held], hyps), 4),
                    "heldout_cer_by_dataset": _cer_by_dataset(held, hyps),
                    "heldout_samples": [{"ref": normalise_text(e.text), "hyp": h} for e, h in
                                        list(zip(held, hyps, strict=True))[:: max(1, len(held) // _N_SAMPLES)]]}
    else:
        metrics |= {"heldout_clips": 0, "heldout_cer": None}
    return metrics
