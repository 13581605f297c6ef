"""Acc_emo: known accuracies overall and per emotion (Table 7), the confusion matrix, and the classifier adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eat.config import EMOTIONS
from eat.emotion.predict import predict_videos
from metrics.emotion import accuracy, confusion_matrix


def test_known_accuracies_overall_per_emotion_and_their_mean():
    truth = np.array([0, 0, 1, 1, 2])          # angry ×2, contempt ×2, disgusted ×1
    pred = np.array([0, 1, 1, 1, 0])
    acc = accuracy(truth, pred, EMOTIONS)
    assert acc["Acc_emo"] == pytest.approx(3 / 5)
    assert (acc["Acc_emo_angry"], acc["Acc_emo_contempt"], acc["Acc_emo_disgusted"]) == (0.5, 1.0, 0.0)
    assert math.isnan(acc["Acc_emo_happy"])                       # no happy video: not a zero
    assert acc["Acc_emo_mean"] == pytest.approx(0.5)
    assert set(acc) == {"Acc_emo", "Acc_emo_mean"} | {f"Acc_emo_{e}" for e in EMOTIONS}


def test_a_perfect_classifier_scores_one_everywhere():
    labels = np.arange(len(EMOTIONS)).repeat(3)
    acc = accuracy(labels, labels, EMOTIONS)
    assert all(v == 1.0 for v in acc.values())
    assert (confusion_matrix(labels, labels, len(EMOTIONS)) == 3 * np.eye(len(EMOTIONS), dtype=int)).all()


def test_confusion_rows_are_truth_and_columns_predictions():
    c = confusion_matrix(np.array([0, 0, 4]), np.array([5, 0, 5]), len(EMOTIONS))
    assert c[0, 5] == 1 and c[0, 0] == 1 and c[4, 5] == 1 and c.sum() == 3


def test_the_trained_classifier_plugs_in():
    import torch

    from eat.emotion.emotion_fan import EmotionFAN
    from tests.conftest import micro_params

    torch.manual_seed(0)
    model = EmotionFAN(micro_params().emotion_classifier)
    videos = [np.random.default_rng(i).integers(0, 255, (4 + i, 40, 40, 3), dtype=np.uint8) for i in range(3)]
    pred = predict_videos(model, videos)
    assert pred.shape == (3,) and ((pred >= 0) & (pred < len(EMOTIONS))).all()
