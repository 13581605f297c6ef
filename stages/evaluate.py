"""DVC stage ``evaluate@<model>``: generate the MEAD and LRW test clips with one model and score them (metrics/)."""

from __future__ import annotations

import argparse

from eat.config import load_params
from eat.evaluation import evaluate_model
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True,
                        help="ground_truth, pretrain, or a key of params.yaml adaptation_variants (eat = the paper)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--latent-table", default="data/features/latent.parquet")
    parser.add_argument("--audio-table", default="data/features/audio.parquet")
    parser.add_argument("--latent-model", default="models/latent/enhanced/model.pt")
    parser.add_argument("--pca", default="models/pca")
    parser.add_argument("--a2et", default="models/a2et/full/model.pt")
    parser.add_argument("--adaptation", default="models/adaptation", help="folder of the variants' model.pt")
    parser.add_argument("--sync-expert", default="models/sync_expert/model.pt")
    parser.add_argument("--emotion-classifier", default="models/emotion_classifier/model.pt")
    parser.add_argument("--out", required=True, help="metrics.json and per-clip parquet tables")
    args = parser.parse_args()

    def body() -> None:
        summary = evaluate_model(load_params(args.params), args.model, latent_table=args.latent_table,
                                 audio_table=args.audio_table, latent_model=args.latent_model, pca_dir=args.pca,
                                 a2et_model=args.a2et, adaptation_dir=args.adaptation, sync_expert=args.sync_expert,
                                 emotion_classifier=args.emotion_classifier, out_dir=args.out)
        shown = {k: v for k, v in summary.items() if k.split("/")[-1] in ("PSNR", "M-LMD", "Sync_expert", "Sync",
                                                                         "Acc_emo", "clips")}
        print(f"evaluate@{args.model}: {shown} -> {args.out}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
