"""Adaptation data (Sec. 3.2; docs/paper_notes.md §6): MEAD clips with an emotion label, each generated from a
*neutral* source image of the same identity, as at test time.

The source of an emotional clip is the first frame of the neutral clip of the same identity and sentence (else
the identity's first neutral clip); a neutral clip keeps its own first frame. The keypoint targets are re-based
on the source's canonical keypoints, K_i = R_i K_c(source) + T_i + E_i, so that the target differs from the
prediction only where the expression does.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from eat.a2et.data import A2ETClip
from eat.adapt.model import emotion_index


def neutral_sources(table: pd.DataFrame) -> np.ndarray:
    """(C,) row index of each clip's neutral source clip (itself for neutral clips); −1 if the identity has none."""
    neutral = table[table.emotion == "neutral"]
    by_sentence = {(r.identity, r.sentence): i for i, r in neutral.iterrows()}
    by_identity: dict[str, int] = {}
    for i, r in neutral.sort_values("uid").iterrows():
        by_identity.setdefault(r.identity, i)
    return np.array([i if r.emotion == "neutral" else by_sentence.get((r.identity, r.sentence),
                                                                        by_identity.get(r.identity, -1))
                     for i, r in table.iterrows()], np.int64)


def with_source(clip: A2ETClip, source: A2ETClip) -> A2ETClip:
    """``clip`` generated from ``source``'s source image, its keypoint targets re-based on that K_c."""
    shift = (source.source.canonical - clip.source.canonical)[None] @ clip.rotation.transpose(0, 2, 1)
    return replace(clip, keypoints=(clip.keypoints + shift).astype(np.float32), source=source.source)


def adaptation_clips(table: pd.DataFrame, clips: list[A2ETClip], use: np.ndarray | None = None
                     ) -> tuple[list[A2ETClip], np.ndarray, list[str]]:
    """(clips with neutral sources, their EMOTIONS labels, uids left out for want of a neutral clip).

    ``table`` and ``clips`` are row-aligned (MEAD clips of one split, loaded by :func:`eat.a2et.train.load_clips`);
    every neutral clip can be a source, ``use`` (bool mask, default all) picks the clips returned.
    """
    table = table.reset_index(drop=True)
    sources = neutral_sources(table)
    use = np.ones(len(table), bool) if use is None else use
    kept = [with_source(clips[i], clips[s]) for i, s in enumerate(sources) if s >= 0 and use[i]]
    labels = np.array([emotion_index(c.emotion) for c in kept], np.int64)
    return kept, labels, without_source(table, use)


def without_source(table: pd.DataFrame, use: np.ndarray) -> list[str]:
    """uids of the clips picked by ``use`` whose identity has no neutral clip to be their source."""
    table = table.reset_index(drop=True)
    return table.uid[(neutral_sources(table) < 0) & use].tolist()


def adaptation_subset(table: pd.DataFrame, use: np.ndarray) -> np.ndarray:
    """Positions in ``adaptation_clips(table, clips)``'s lists of the clips ``adaptation_clips(table, clips, use)``
    returns: one load of every clip serves each variant's share."""
    has_source = neutral_sources(table.reset_index(drop=True)) >= 0
    return np.flatnonzero(use[has_source])


def fraction_mask(table: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Bool mask of a seeded ``fraction`` of the clips of every emotion, at least one each (Fig. 5's 25 / 50 /
    100 % of the training data)."""
    table = table.reset_index(drop=True)
    if fraction >= 1:
        return np.ones(len(table), bool)
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(table), bool)
    for _, group in table.groupby("emotion", sort=True):
        n = max(1, int(round(fraction * len(group))))
        mask[rng.choice(group.index.to_numpy(), n, replace=False)] = True
    return mask
