"""Acc_emo (Tables 1, 3, 7): emotion accuracy of generated videos under the Emotion-FAN classifier.

Official protocol (evaluation_eat ``test_emotion_acc.py``; docs/paper_notes.md §7): one prediction per video from all
its face frames (Emotion-FAN's frame attention), accuracy = share of videos whose prediction is the
emotion the video was generated with; Table 7 breaks it down per emotion. The classifier is the one
this pipeline fine-tunes on MEAD train (eat/emotion/train.py); on ground-truth test videos it gives
the "Ground Truth" row. Its predictions (eat/emotion/predict.py) come here as labels: indices into the
``emotions`` the caller passes (the pipeline's ``eat.config.EMOTIONS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) int64 counts, rows = true emotion, columns = predicted."""
    out = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(out, (np.asarray(truth, np.int64), np.asarray(pred, np.int64)), 1)
    return out


def accuracy(truth: np.ndarray, pred: np.ndarray, emotions: Sequence[str]) -> dict[str, float]:
    """``Acc_emo`` over all videos, ``Acc_emo_<emotion>`` per emotion (NaN where none), and ``Acc_emo_mean``,
    the mean of the per-emotion values present (Table 7's "average" row); fractions in [0, 1]."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    out = {"Acc_emo": float(np.mean(truth == pred)) if len(truth) else float("nan")}
    per = {f"Acc_emo_{e}": float(np.mean(pred[truth == i] == i)) if (truth == i).any() else float("nan")
           for i, e in enumerate(emotions)}
    present = [v for v in per.values() if not np.isnan(v)]
    return out | per | {"Acc_emo_mean": float(np.mean(present)) if present else float("nan")}
