"""DVC stage ``train_speech_recognizer``: train the ``ctc`` speech backend, the offline stand-in for DeepSpeech."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from eat import paths
from eat.config import ConfigError
from eat.features.config import load_feature_params
from eat.features.train_recognizer import train_recognizer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--normalised", type=Path, default=paths.NORMALISED_TABLE)
    parser.add_argument("--out", type=Path, default=paths.SPEECH_RECOGNIZER,
                        help="model.pt and the Ray Train checkpoints (ray/) go here")
    parser.add_argument("--metrics", type=Path, default=paths.SPEECH_RECOGNIZER_METRICS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        metrics = train_recognizer(load_feature_params(args.params), args.normalised, args.out, args.metrics)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    summary = {k: metrics[k] for k in ("steps", "train_loss", "train_cer", "heldout_cer")}
    print(f"train_speech_recognizer: {json.dumps(summary)} in {metrics['seconds']['total']} s -> {args.out}/model.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
