"""DVC stage ``train_adaptation``: train every emotional-adaptation variant of params.yaml ``adaptation_runs``."""

from __future__ import annotations

import argparse

from eat.adapt.train import train_adaptations
from eat.config import load_params
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--variants", nargs="*", help="default: params.yaml adaptation_runs (eat = the paper)")
    parser.add_argument("--latent-table", default="data/features/latent.parquet")
    parser.add_argument("--audio-table", default="data/features/audio.parquet")
    parser.add_argument("--latent-model", default="models/latent/enhanced/model.pt")
    parser.add_argument("--pca", default="models/pca")
    parser.add_argument("--a2et", default="models/a2et/full/model.pt", help="the pretrained A2ET")
    parser.add_argument("--sync-expert", default="models/sync_expert/model.pt")
    parser.add_argument("--emotion-classifier", default="models/emotion_classifier/model.pt")
    parser.add_argument("--out", default="models/adaptation", help="<variant>/model.pt and snapshots.pt")
    parser.add_argument("--checkpoints", default="models/adaptation_checkpoints", help="Ray Train checkpoints")
    parser.add_argument("--reports", default="reports/adaptation", help="<variant>/metrics.json, logs, curve.csv")
    args = parser.parse_args()

    def body() -> None:
        params = load_params(args.params)
        results = train_adaptations(params, args.variants or params.adaptation_runs, latent_table=args.latent_table,
                                    audio_table=args.audio_table, latent_model=args.latent_model, pca_dir=args.pca,
                                    a2et_model=args.a2et, sync_expert=args.sync_expert,
                                    emotion_classifier=args.emotion_classifier, out_dir=args.out,
                                    checkpoints=args.checkpoints, reports_dir=args.reports)
        for name, r in results.items():
            print(f"train_adaptation {name}: {r['steps']} steps on {r['train_clips']} clips in "
                  f"{r['timing']['train_seconds']} s, {r['trainable_parameters']} trainable parameters, loss "
                  f"{r['loss_first']} -> {r['loss_last']}, held-out Acc_emo {r['heldout']['acc_emo']}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
