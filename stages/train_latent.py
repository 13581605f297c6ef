"""DVC stage ``train_latent@<variant>``: train the 3D latent model (osfv or enhanced) on Ray Train."""

from __future__ import annotations

import argparse
from pathlib import Path

from eat import paths
from eat.config import load_params
from eat.latent.train import MODES, train_latent
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True, choices=MODES)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", type=Path, default=paths.POSE_TABLE)
    parser.add_argument("--out", required=True, help="model.pt and the Ray Train checkpoints (ray/) go here")
    parser.add_argument("--reports", required=True, help="metrics.json, timing.json, train_log.csv, figures")
    parser.add_argument("--init", default="scratch", help="'scratch' or a model.pt to start from")
    args = parser.parse_args()

    def body() -> None:
        init = None if args.init == "scratch" else args.init
        result = train_latent(load_params(args.params), args.variant, args.pose_table, args.out, args.reports, init)
        held = result["heldout"]
        summary = "; ".join(f"{name} face {s.get('psnr_face')} dB (copy-source {s.get('psnr_face_copy_source')})"
                            for name in ("same_clip", "neutral_source", "neutral_source_moving")
                            if (s := held.get(name)))
        print(f"train_latent@{args.variant}: {result['steps']} steps in {result['timing']['train_seconds']} s; "
              f"held-out PSNR {summary or 'n/a'} -> {args.out}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
