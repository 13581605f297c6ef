"""DVC stage ``audio_features``: log-mel, MFCC and speech features per normalised clip (docs/paper_notes.md §1)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from eat import paths
from eat.config import ConfigError
from eat.features.config import load_feature_params
from eat.features.extract import extract_audio_features
from eat.features.speech_backend import SpeechBackendUnavailable
from eat.io.atomic import write_text_atomic


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--normalised", type=Path, default=paths.NORMALISED_TABLE)
    parser.add_argument("--recognizer", type=Path, default=paths.SPEECH_RECOGNIZER_MODEL,
                        help="checkpoint of the ctc backend (speech_backend: ctc)")
    parser.add_argument("--out", type=Path, default=paths.AUDIO_FEATURES, help="<uid>.npz per clip")
    parser.add_argument("--index", type=Path, default=paths.AUDIO_TABLE)
    parser.add_argument("--quarantine", type=Path, default=paths.AUDIO_QUARANTINE)
    parser.add_argument("--summary", type=Path, default=paths.AUDIO_SUMMARY)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = extract_audio_features(load_feature_params(args.params), args.normalised, args.out, args.index,
                                         args.quarantine, args.recognizer)
    except (ConfigError, SpeechBackendUnavailable, FileNotFoundError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    write_text_atomic(args.summary, json.dumps(summary, indent=2) + "\n")
    print(f"audio_features: {summary['clips']} clips ({summary['computed']} computed, {summary['reused']} reused, "
          f"{summary['quarantined']} quarantined) -> {args.out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
