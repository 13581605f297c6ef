"""DVC stage ``extract_latent``: per-clip keypoint latents (K_c, R_i, T_i, E_i, K_i) from the trained latent model."""

from __future__ import annotations

import argparse
import logging
import sys

from eat.config import ConfigError, load_params
from eat.latent.extract import extract_latent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", default="data/features/pose.parquet")
    parser.add_argument("--model", default="models/latent/enhanced/model.pt")
    parser.add_argument("--out-dir", default="data/features/latent")
    parser.add_argument("--table", default="data/features/latent.parquet")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        extract_latent(load_params(args.params), args.pose_table, args.model, args.out_dir, args.table)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
