"""DeepSpeech's output alphabet, text normalisation, greedy CTC decoding and the character error rate.

DeepSpeech 0.1.0 emits 29 logits per 20 ms step: its ``alphabet.txt`` (space, ``a``–``z``,
apostrophe, in that order: indices 0–27) followed by the CTC blank, which TensorFlow's CTC
puts last (index 28). The ``ctc`` substitute recogniser uses exactly this ordering, so the
speech features of both backends index the same symbols: ``speech[..., k]`` is ``SYMBOLS[k]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

SYMBOLS: tuple[str, ...] = (" ", *"abcdefghijklmnopqrstuvwxyz", "'", "<blank>")
"""The 29 output symbols, in DeepSpeech 0.1.0 order; the last is the CTC blank."""
BLANK = len(SYMBOLS) - 1
N_SYMBOLS = len(SYMBOLS)

_INDEX = {ch: i for i, ch in enumerate(SYMBOLS[:BLANK])}
_OUTSIDE = re.compile(r"[^a-z' ]+")
_SPACES = re.compile(r" +")


def normalise_text(text: str) -> str:
    """Lower-case, map every character outside the alphabet to a space, squeeze spaces.

    ``"She had your dark suit."`` → ``"she had your dark suit"``; hyphens and digits become word
    breaks (the synthetic corpora have none).
    """
    return _SPACES.sub(" ", _OUTSIDE.sub(" ", text.lower())).strip()


def encode(text: str) -> np.ndarray:
    """Symbol indices of ``normalise_text(text)``: (L,) int64, no blanks."""
    return np.array([_INDEX[ch] for ch in normalise_text(text)], dtype=np.int64)


def greedy_decode(logits: np.ndarray) -> str:
    """Best-path CTC decoding of (S, 29) scores: arg-max per step, merge repeats, drop blanks."""
    best = np.asarray(logits).argmax(axis=-1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return "".join(SYMBOLS[i] for i in best[keep] if i != BLANK)


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance (unit insertion, deletion, substitution costs)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus CER: total edit distance over total reference characters (after normalisation).

    ``character_error_rate(["abc"], ["abd"]) == 1/3``. Empty references are not allowed.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [normalise_text(r) for r in references]
    total = sum(len(r) for r in refs)
    if total == 0:
        raise ValueError("the references have no characters: CER is undefined")
    return sum(edit_distance(r, normalise_text(h)) for r, h in zip(refs, hypotheses, strict=True)) / total
