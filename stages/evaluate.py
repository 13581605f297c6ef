"""DVC stage ``evaluate``: generate the MEAD and LRW test clips with every model and score them (metrics/).

Models: ground_truth, pretrain, static (the source image held), Table 3's latent_osfv and latent_enhanced, and
params.yaml ``adaptation_runs`` (eat = the paper's model); every folder of ``--baselines`` (another method's
``<uid>.mp4`` per test clip) is scored as ``baseline_<folder>``."""

from __future__ import annotations

import argparse
from pathlib import Path

from eat import paths
from eat.config import load_params
from eat.evaluation import evaluate_models
from eat.report.inputs import REFERENCE_MODELS
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--models", nargs="*", help="default: ground_truth, pretrain, static, latent_osfv, "
                                                    "latent_enhanced and every adaptation run")
    parser.add_argument("--latent-table", type=Path, default=paths.LATENT_TABLE)
    parser.add_argument("--audio-table", type=Path, default=paths.AUDIO_TABLE)
    parser.add_argument("--latent-model", type=Path, default=paths.LATENT_MODEL)
    parser.add_argument("--osfv-model", type=Path, required=True,
                        help="the OSFV latent model, models/latent/osfv/model.pt in dvc.yaml (Table 3's latent_osfv)")
    parser.add_argument("--pca", type=Path, default=paths.PCA)
    parser.add_argument("--a2et", type=Path, default=paths.A2ET_MODEL)
    parser.add_argument("--adaptation", type=Path, default=paths.ADAPTATION, help="folder of the variants' model.pt")
    parser.add_argument("--sync-expert", type=Path, default=paths.SYNC_EXPERT_MODEL)
    parser.add_argument("--emotion-classifier", type=Path, default=paths.EMOTION_CLASSIFIER_MODEL)
    parser.add_argument("--baselines", type=Path, default=paths.BASELINES,
                        help="<method>/<uid>.mp4: other methods' videos")
    parser.add_argument("--out", type=Path, default=paths.EVALUATE,
                        help="<model>/metrics.json, per-clip tables, videos")
    args = parser.parse_args()

    def body() -> None:
        params = load_params(args.params)
        models = args.models or [*REFERENCE_MODELS, *params.adaptation_runs]
        summaries = evaluate_models(params, models, latent_table=args.latent_table, audio_table=args.audio_table,
                                    latent_model=args.latent_model, pca_dir=args.pca, a2et_model=args.a2et,
                                    adaptation_dir=args.adaptation, sync_expert=args.sync_expert,
                                    emotion_classifier=args.emotion_classifier, out_dir=args.out,
                                    baselines_dir=args.baselines, osfv_model=args.osfv_model)
        for name, summary in summaries.items():
            shown = {k: v for k, v in summary.items() if k.split("/")[-1] in ("PSNR", "M-LMD", "Sync_expert", "Sync",
                                                                             "Acc_emo")}
            print(f"evaluate {name}: {shown}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
