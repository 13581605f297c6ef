"""DVC stage ``train_adaptation@<variant>``: train one emotional-adaptation variant (params adaptation_variants)."""

from __future__ import annotations

import argparse

from eat.adapt.train import train_adaptation
from eat.config import load_params
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True, help="a key of params.yaml adaptation_variants (eat = the paper)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--latent-table", default="data/features/latent.parquet")
    parser.add_argument("--audio-table", default="data/features/audio.parquet")
    parser.add_argument("--latent-model", default="models/latent/enhanced/model.pt")
    parser.add_argument("--pca", default="models/pca")
    parser.add_argument("--a2et", default="models/a2et/full/model.pt", help="the pretrained A2ET")
    parser.add_argument("--sync-expert", default="models/sync_expert/model.pt")
    parser.add_argument("--emotion-classifier", default="models/emotion_classifier/model.pt")
    parser.add_argument("--out", required=True, help="model.pt, snapshots.pt and Ray Train checkpoints (ray/)")
    parser.add_argument("--reports", required=True, help="metrics.json, timing.json, train_log.csv")
    args = parser.parse_args()

    def body() -> None:
        result = train_adaptation(load_params(args.params), args.variant, latent_table=args.latent_table,
                                  audio_table=args.audio_table, latent_model=args.latent_model, pca_dir=args.pca,
                                  a2et_model=args.a2et, sync_expert=args.sync_expert,
                                  emotion_classifier=args.emotion_classifier, out_dir=args.out,
                                  reports_dir=args.reports)
        print(f"train_adaptation@{args.variant}: {result['steps']} steps on {result['train_clips']} clips in "
              f"{result['timing']['train_seconds']} s, {result['trainable_parameters']} trainable parameters, loss "
              f"{result['loss_first']} -> {result['loss_last']}, held-out Acc_emo {result['heldout']['acc_emo']} "
              f"-> {args.out}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
