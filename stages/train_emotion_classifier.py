"""DVC stage ``train_emotion_classifier``: train Emotion-FAN on MEAD (and the still clips of eat/synth/stills.py) for
Acc_emo (its "Ground Truth" row)."""

from __future__ import annotations

import argparse
from pathlib import Path

from eat import paths
from eat.config import load_params
from eat.emotion.train import emotion_tables, train_emotion_classifier, training_ray
from eat.synth.stills import still_clips
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", type=Path, default=paths.POSE_TABLE)
    parser.add_argument("--out", type=Path, default=paths.EMOTION_CLASSIFIER,
                        help="model.pt and the Ray Train checkpoints (ray/) go here")
    parser.add_argument("--metrics", type=Path, default=paths.EMOTION_CLASSIFIER_METRICS,
                        help="timing.json and train_log.csv go beside it")
    args = parser.parse_args()

    def body() -> None:
        params = load_params(args.params)
        emotion_tables(args.pose_table)   # a missing or unusable table fails here, before the stills are rendered
        with training_ray(params.ray):    # one local Ray renders the still clips and trains
            result = train_emotion_classifier(params.emotion_classifier, params.seed, args.pose_table, args.out,
                                              args.metrics, params.ray, frame_size=params.signal.image_size,
                                              stills=still_clips(params))
        print(f"train_emotion_classifier: {result['steps']} steps in {result['timing']['train_seconds']} s "
              f"({result['weights']['weights']} weights), train loss {result['train_loss_first']} -> "
              f"{result['train_loss_last']}; held-out Acc_emo {result['acc_emo_ground_truth']} "
              f"(chance {result['acc_emo_chance']}) -> {args.out}/model.pt")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
