"""DVC stage ``emotion_control``: Fig. 12's interpolation strip and the intensity response of the adapted model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from eat import paths
from eat.adapt.checkpoint import load_emotional_model
from eat.adapt.clip_edit import clip_status
from eat.adapt.control import first_frames, intensity_response, interpolation_strip, save_png
from eat.adapt.heldout import heldout_clips
from eat.config import load_params
from eat.emotion.train import load_emotion_classifier
from eat.io.atomic import write_text_atomic
from eat.latent.pca import ExpressionBasis
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", type=Path, default=paths.EAT_MODEL)
    parser.add_argument("--latent-table", type=Path, default=paths.LATENT_TABLE)
    parser.add_argument("--audio-table", type=Path, default=paths.AUDIO_TABLE)
    parser.add_argument("--latent-model", type=Path, default=paths.LATENT_MODEL)
    parser.add_argument("--pca", type=Path, default=paths.PCA)
    parser.add_argument("--emotion-classifier", type=Path, default=paths.EMOTION_CLASSIFIER_MODEL)
    parser.add_argument("--strip", type=Path, default=paths.EMOTION_CONTROL_STRIP)
    parser.add_argument("--metrics", type=Path, default=paths.EMOTION_CONTROL_METRICS)
    args = parser.parse_args()

    def body() -> None:
        params = load_params(args.params)
        cfg, half = params.emotion_control, params.signal.window_frames // 2
        basis = ExpressionBasis.load(args.pca, params.latent.pca_components)
        model = load_emotional_model(args.model, params, basis)
        clips = [first_frames(c, cfg.clip_frames) for c in
                 heldout_clips(params, args.latent_table, args.audio_table, basis, args.latent_model, cfg.clips)]
        if not clips:
            raise ValueError(f"{args.latent_table}: no held-out MEAD clip to generate")
        save_png(interpolation_strip(model, clips[0], cfg.start, cfg.end, cfg.steps, cfg.frames, params.seed, half),
                 Path(args.strip))
        response = intensity_response(model, clips, load_emotion_classifier(args.emotion_classifier),
                                      np.asarray(cfg.intensities), params.seed, half)
        summary = {"clip_edit": clip_status(),   # zero-shot text editing: a number only with CLIP weights
                   "clips": len(clips), "frames_per_clip": cfg.clip_frames, "intensities": cfg.intensities,
                   "strip": {"from": cfg.start, "to": cfg.end, "uid": clips[0].uid},
                   "monotonic_emotions": sum(r["monotonic"] for r in response.values()),
                   "mean_spearman": round(float(np.mean([r["spearman"] for r in response.values()])), 4),
                   "emotions": response}
        write_text_atomic(Path(args.metrics), json.dumps(summary, indent=2) + "\n")
        print(f"emotion_control: {summary['monotonic_emotions']}/{len(response)} emotions rise monotonically with "
              f"intensity (mean Spearman {summary['mean_spearman']}); strip -> {args.strip}; CLIP editing: "
              f"{summary['clip_edit'].get('message', 'weights available')}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
