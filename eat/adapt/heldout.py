"""Held-out MEAD clips for scoring adapted models, and Fig. 5's tuning-efficiency curve.

Held-out clips are the MEAD test identities' clips, each generated from a neutral source of its identity
(:mod:`eat.adapt.data`), the same protocol as the evaluation stage. Fig. 5 scores the adaptation snapshots kept
along training (:mod:`eat.adapt.train`) on a fixed subset of them: Acc_emo of the generated videos under the
trained emotion classifier, against the training seconds spent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eat.a2et.data import A2ETClip, a2et_table
from eat.a2et.train import evaluation_subset, load_clips
from eat.adapt.checkpoint import load_emotional_model
from eat.adapt.data import adaptation_clips
from eat.adapt.generate import emotion_codes, emotional_video, latent_code
from eat.adapt.model import EmotionalModel
from eat.config import EMOTIONS, Params
from eat.emotion.predict import predict_videos
from eat.latent.pca import ExpressionBasis


def balanced_subset(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows of ``table`` (all when ``n`` is 0 or larger) dealt evenly over the emotions present, in EMOTIONS
    order (``n // E`` each, one more for the first ``n mod E``), each emotion's spread evenly over its uid-sorted
    rows (:func:`~eat.a2et.train.evaluation_subset`); uid-sorted. Every emotion's Acc_emo then rests on as many
    clips as the sample allows (an emotion with fewer clips than its share gives all it has)."""
    if not n or n >= len(table):
        return table
    emotions = [e for e in EMOTIONS if (table.emotion == e).any()]
    shares = {e: n // len(emotions) + (i < n % len(emotions)) for i, e in enumerate(emotions)}
    parts = [evaluation_subset(table[table.emotion == e].sort_values("uid").reset_index(drop=True), k)
             for e, k in shares.items() if k]
    return pd.concat(parts).sort_values("uid").reset_index(drop=True)


def heldout_clips(params: Params, latent_table: Path | str, audio_table: Path | str, basis: ExpressionBasis,
                  latent_model: Path | str, n: int, emotional_only: bool = True) -> list[A2ETClip]:
    """``n`` MEAD test clips (0 = all; :func:`balanced_subset`) with neutral sources."""
    table = a2et_table(latent_table, audio_table)
    table = table[(table.dataset == "MEAD") & (table.split == "test")].reset_index(drop=True)
    use = (table.emotion != "neutral").to_numpy() if emotional_only else np.ones(len(table), bool)
    chosen = set(balanced_subset(table[use], n).uid)
    needed = table[table.uid.isin(chosen) | (table.emotion == "neutral")].reset_index(drop=True)
    clips = load_clips(params, needed, basis, str(latent_model), with_frames=True)
    kept, _, _ = adaptation_clips(needed, clips, needed.uid.isin(chosen).to_numpy())
    return kept


def generate_heldout(model: EmotionalModel, clips: list[A2ETClip], params: Params) -> list[np.ndarray]:
    """Each clip generated with its own emotion and the seed's fixed latent code."""
    z = latent_code(model, params.seed)
    return [emotional_video(model, clip, emotion_codes(model, {clip.emotion: 1.0}, z),
                            params.signal.window_frames // 2) for clip in clips]


def tuning_curve(model_path: Path | str, snapshots: list[dict[str, Any]], clips: list[A2ETClip], classifier,
                 params: Params, basis: ExpressionBasis) -> pd.DataFrame:
    """Fig. 5 rows: step, training seconds, Acc_emo of every snapshot on ``clips``."""
    truth = np.array([EMOTIONS.index(c.emotion) for c in clips])
    rows = []
    for snap in snapshots:
        model = load_emotional_model(model_path, params, basis, snapshot=snap["adaptation"])
        pred = predict_videos(classifier, generate_heldout(model, clips, params))
        rows.append({"step": snap["step"], "seconds": snap["seconds"], "acc_emo": float(np.mean(pred == truth))})
    return pd.DataFrame(rows)
