"""Acc_emo (Tables 1, 3, 7): emotion accuracy of generated videos under the Emotion-FAN classifier.

Official protocol (evaluation_eat ``test_emotion_acc.py``; docs/paper_notes.md §7): one prediction per video from all
its face frames (Emotion-FAN's frame attention), accuracy = share of videos whose prediction is the
emotion the video was generated with; Table 7 breaks it down per emotion. The classifier is the one
this pipeline fine-tunes on MEAD train (eat/emotion/train.py); on ground-truth test videos it gives
the "Ground Truth" row. Labels are indices into :data:`eat.config.EMOTIONS`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eat.config import EMOTIONS


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int = len(EMOTIONS)) -> np.ndarray:
    """(K, K) int64 counts, rows = true emotion, columns = predicted."""
    out = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(out, (np.asarray(truth, np.int64), np.asarray(pred, np.int64)), 1)
    return out


def accuracy(truth: np.ndarray, pred: np.ndarray, emotions: Sequence[str] = EMOTIONS) -> dict[str, float]:
    """``Acc_emo`` over all videos, ``Acc_emo_<emotion>`` per emotion (NaN where none), and ``Acc_emo_mean``,
    the mean of the per-emotion values present (Table 7's "average" row); fractions in [0, 1]."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    out = {"Acc_emo": float(np.mean(truth == pred)) if len(truth) else float("nan")}
    per = {f"Acc_emo_{e}": float(np.mean(pred[truth == i] == i)) if (truth == i).any() else float("nan")
           for i, e in enumerate(emotions)}
    present = [v for v in per.values() if not np.isnan(v)]
    return out | per | {"Acc_emo_mean": float(np.mean(present)) if present else float("nan")}


def video_probabilities(model, videos: Sequence[np.ndarray]) -> np.ndarray:
    """(C, 8) emotion probabilities (EMOTIONS order) of videos of aligned frames (T, H, W, 3) uint8 RGB — the
    layout of data/interim/aligned and of generated videos — by the trained Emotion-FAN
    (eat.emotion.train.load_emotion_classifier): the classifier's face box of every frame, all frames at once."""
    import torch

    from eat.emotion.emotion_fan import face_crops
    from eat.emotion.train import frames_tensor

    model.eval()
    with torch.inference_mode():
        return np.stack([model(face_crops(frames_tensor(v), model.cfg.input_size)[None]).softmax(1)[0].numpy()
                         for v in videos])


def predict_videos(model, videos: Sequence[np.ndarray]) -> np.ndarray:
    """(C,) EMOTIONS indices of videos of aligned frames: the most probable emotion (:func:`video_probabilities`)."""
    return video_probabilities(model, videos).argmax(1) if len(videos) else np.zeros(0, np.int64)
