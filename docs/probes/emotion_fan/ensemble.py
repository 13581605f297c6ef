"""Emotion-FAN held-out accuracy of several trained classifiers alone and as an ensemble (mean of their softmax).

    python docs/probes/emotion_fan/ensemble.py --pose-table data/features/pose.parquet model_a.pt model_b.pt ...

Every test clip (Table 1's Ground Truth row) and the paper set (level 3 and neutral), mean over the emotions, read
as the stage reads them (crops cut from frames at ``signal.image_size``). The models are the stage's ``model.pt``
files, e.g. of ``make seeds`` experiments (their md5 in each experiment's dvc.lock, the file in the DVC cache).
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np
import torch

from eat.config import EMOTIONS, load_params
from eat.emotion.train import (
    emotion_tables,
    frames_tensor,
    load_emotion_classifier,
    load_emotion_clips,
    protocol_clips,
)


def mean_over_emotions(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[truth == i] == i) for i in range(len(EMOTIONS)) if (truth == i).any()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", required=True)
    parser.add_argument("models", nargs="+")
    args = parser.parse_args()
    params = load_params(args.params)
    _, test_table = emotion_tables(args.pose_table)
    held = load_emotion_clips(test_table, params.emotion_classifier.input_size, params.signal.image_size)
    paper = {c.uid for c in protocol_clips(test_table, held)}
    mask = np.array([c.uid in paper for c in held])
    truth = np.array([c.label for c in held])
    torch.set_num_threads(2)
    probs = []
    for path in args.models:
        model = load_emotion_classifier(path)
        with torch.inference_mode():
            probs.append(np.stack([model(frames_tensor(c.frames)[None]).softmax(1)[0].numpy() for c in held]))
    for k in range(1, len(probs) + 1):
        for combo in itertools.combinations(range(len(probs)), k):
            pred = np.mean([probs[i] for i in combo], axis=0).argmax(1)
            print(json.dumps({"models": [args.models[i] for i in combo],
                              "every_clip": round(mean_over_emotions(pred, truth), 4),
                              "paper_set": round(mean_over_emotions(pred[mask], truth[mask]), 4),
                              "neutral_right": int(np.sum((pred == truth) & (truth == EMOTIONS.index("neutral"))))}))


if __name__ == "__main__":
    main()
