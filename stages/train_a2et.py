"""DVC stage ``train_a2et@<phase>``: pretrain A2ET (phase ``latent``, then ``full``) on Ray Train."""

from __future__ import annotations

import argparse
from pathlib import Path

from eat import paths
from eat.a2et.train import PHASES, train_a2et
from eat.config import load_params
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--phase", required=True, choices=PHASES)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--latent-table", type=Path, default=paths.LATENT_TABLE)
    parser.add_argument("--audio-table", type=Path, default=paths.AUDIO_TABLE)
    parser.add_argument("--latent-model", type=Path, default=paths.LATENT_MODEL)
    parser.add_argument("--pca", type=Path, default=paths.PCA, help="folder with U_mead.npy and mean_mead.npy")
    parser.add_argument("--sync-expert", type=Path, default=paths.SYNC_EXPERT_MODEL)
    parser.add_argument("--init", default="scratch", help="'scratch' or the phase-1 model.pt")
    parser.add_argument("--out", required=True, help="model.pt and the Ray Train checkpoints (ray/) go here")
    parser.add_argument("--reports", required=True, help="metrics.json, timing.json, train_log.csv, example video")
    args = parser.parse_args()

    def body() -> None:
        result = train_a2et(load_params(args.params), args.phase, latent_table=args.latent_table,
                            audio_table=args.audio_table, latent_model=args.latent_model, pca_dir=args.pca,
                            sync_expert=args.sync_expert, init=None if args.init == "scratch" else args.init,
                            out_dir=args.out, reports_dir=args.reports)
        held = result["heldout"]
        print(f"train_a2et@{args.phase}: {result['steps']} steps in {result['timing']['train_seconds']} s; held-out "
              f"M-LMD {held.get('M-LMD_generated')} (static frame {held.get('M-LMD_static')}), sync confidence "
              f"{held.get('Sync_generated')} (shuffled audio {held.get('Sync_generated_shuffled')}) -> {args.out}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
