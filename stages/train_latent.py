"""DVC stage ``train_latent@<variant>``: train the 3D latent model (osfv or enhanced) on Ray Train."""

from __future__ import annotations

import argparse
import logging
import sys

from eat.config import ConfigError, load_params
from eat.latent.train import MODES, train_latent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", required=True, choices=MODES)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", default="data/features/pose.parquet")
    parser.add_argument("--out", required=True, help="model.pt and the Ray Train checkpoints (ray/) go here")
    parser.add_argument("--reports", required=True, help="metrics.json, timing.json, train_log.csv, figures")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = train_latent(load_params(args.params), args.variant, args.pose_table, args.out, args.reports)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    held = result["heldout"].get("same_clip", {})
    print(f"train_latent@{args.variant}: {result['steps']} steps in {result['timing']['train_seconds']} s; "
          f"held-out PSNR {held.get('psnr')} dB vs copy-source {held.get('psnr_copy_source')} dB -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
