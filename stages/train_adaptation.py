"""DVC stage ``train_adaptation``: train every emotional-adaptation variant of params.yaml ``adaptation_runs``."""

from __future__ import annotations

import argparse
from pathlib import Path

from eat import paths
from eat.adapt.train import train_adaptations
from eat.config import load_params
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--variants", nargs="*", help="default: params.yaml adaptation_runs (eat = the paper)")
    parser.add_argument("--latent-table", type=Path, default=paths.LATENT_TABLE)
    parser.add_argument("--audio-table", type=Path, default=paths.AUDIO_TABLE)
    parser.add_argument("--latent-model", type=Path, default=paths.LATENT_MODEL)
    parser.add_argument("--pca", type=Path, default=paths.PCA)
    parser.add_argument("--a2et", type=Path, default=paths.A2ET_MODEL, help="the pretrained A2ET")
    parser.add_argument("--sync-expert", type=Path, default=paths.SYNC_EXPERT_MODEL)
    parser.add_argument("--emotion-classifier", type=Path, default=paths.EMOTION_CLASSIFIER_MODEL)
    parser.add_argument("--out", type=Path, default=paths.ADAPTATION, help="<variant>/model.pt and snapshots.pt")
    parser.add_argument("--checkpoints", type=Path, default=paths.ADAPTATION_CHECKPOINTS, help="Ray Train checkpoints")
    parser.add_argument("--reports", type=Path, default=paths.ADAPTATION_REPORTS,
                        help="<variant>/metrics.json, logs, curve.csv")
    args = parser.parse_args()

    def body() -> None:
        params = load_params(args.params)
        results = train_adaptations(params, args.variants or params.adaptation_runs, latent_table=args.latent_table,
                                    audio_table=args.audio_table, latent_model=args.latent_model, pca_dir=args.pca,
                                    a2et_model=args.a2et, sync_expert=args.sync_expert,
                                    emotion_classifier=args.emotion_classifier, out_dir=args.out,
                                    checkpoints=args.checkpoints, reports_dir=args.reports)
        for name, r in results.items():
            print(f"train_adaptation {name}: {r['steps']} steps on {r['train_clips']} clips, "
                  f"{r['timing']['seconds_in_steps']} s in steps, {r['trainable_parameters']} trainable parameters, "
                  f"loss {r['loss_first']} -> {r['loss_last']}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
