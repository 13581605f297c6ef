"""The emotion classifier's predictions on videos: the labels Acc_emo (metrics/emotion.py) scores.

Here rather than in metrics/, which holds pure functions of arrays and imports nothing of eat: running the
classifier needs its face crops and frame tensors (eat/emotion/emotion_fan.py, eat/emotion/train.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from eat.emotion.train import frames_tensor, judged_face_crops


def video_probabilities(model, videos: Sequence[np.ndarray]) -> np.ndarray:
    """(C, 8) emotion probabilities (EMOTIONS order) of videos of aligned frames (T, H, W, 3) uint8 RGB — the
    layout of data/interim/aligned and of generated videos — by the trained Emotion-FAN
    (eat.emotion.train.load_emotion_classifier): the classifier's face box of every frame, all frames at once, cut
    and rounded to uint8 exactly as the stage's held-out clips (:func:`~eat.emotion.train.judged_face_crops`), so
    the Ground Truth row equals the stage's own held-out accuracy (unrounded crops flipped one clip in 48)."""
    model.eval()
    with torch.inference_mode():
        return np.stack([model(frames_tensor(judged_face_crops(v, model.cfg.input_size))[None]).softmax(1)[0].numpy()
                         for v in videos])


def predict_videos(model, videos: Sequence[np.ndarray]) -> np.ndarray:
    """(C,) EMOTIONS indices of videos of aligned frames: the most probable emotion (:func:`video_probabilities`)."""
    return video_probabilities(model, videos).argmax(1) if len(videos) else np.zeros(0, np.int64)
