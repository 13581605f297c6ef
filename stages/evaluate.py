"""DVC stage ``evaluate``: generate the MEAD and LRW test clips with every model and score them (metrics/).

Models: ground_truth, pretrain and params.yaml ``adaptation_runs`` (eat = the paper's model); every folder of
``--baselines`` (another method's ``<uid>.mp4`` per test clip) is scored as ``baseline_<folder>``."""

from __future__ import annotations

import argparse

from eat.config import load_params
from eat.evaluation import evaluate_models
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", nargs="*", help="default: ground_truth pretrain and every adaptation run")
    parser.add_argument("--latent-table", default="data/features/latent.parquet")
    parser.add_argument("--audio-table", default="data/features/audio.parquet")
    parser.add_argument("--latent-model", default="models/latent/enhanced/model.pt")
    parser.add_argument("--pca", default="models/pca")
    parser.add_argument("--a2et", default="models/a2et/full/model.pt")
    parser.add_argument("--adaptation", default="models/adaptation", help="folder of the variants' model.pt")
    parser.add_argument("--sync-expert", default="models/sync_expert/model.pt")
    parser.add_argument("--emotion-classifier", default="models/emotion_classifier/model.pt")
    parser.add_argument("--baselines", default="data/baselines", help="<method>/<uid>.mp4: other methods' videos")
    parser.add_argument("--out", default="reports/evaluate", help="<model>/metrics.json, per-clip tables, videos")
    args = parser.parse_args()

    def body() -> None:
        params = load_params(args.params)
        models = args.models or ["ground_truth", "pretrain", *params.adaptation_runs]
        summaries = evaluate_models(params, models, latent_table=args.latent_table, audio_table=args.audio_table,
                                    latent_model=args.latent_model, pca_dir=args.pca, a2et_model=args.a2et,
                                    adaptation_dir=args.adaptation, sync_expert=args.sync_expert,
                                    emotion_classifier=args.emotion_classifier, out_dir=args.out,
                                    baselines_dir=args.baselines)
        for name, summary in summaries.items():
            shown = {k: v for k, v in summary.items() if k.split("/")[-1] in ("PSNR", "M-LMD", "Sync_expert", "Sync",
                                                                             "Acc_emo")}
            print(f"evaluate {name}: {shown}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
