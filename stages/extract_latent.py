"""DVC stage ``extract_latent``: per-clip keypoint latents (K_c, R_i, T_i, E_i, K_i) from the trained latent model."""

from __future__ import annotations

import argparse
from pathlib import Path

from eat import paths
from eat.config import load_params
from eat.latent.extract import extract_latent
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", type=Path, default=paths.POSE_TABLE)
    parser.add_argument("--model", type=Path, default=paths.LATENT_MODEL)
    parser.add_argument("--out-dir", type=Path, default=paths.LATENT_FEATURES)
    parser.add_argument("--table", type=Path, default=paths.LATENT_TABLE)
    args = parser.parse_args()
    return run_stage(lambda: extract_latent(load_params(args.params), args.pose_table, args.model, args.out_dir,
                                            args.table))


if __name__ == "__main__":
    raise SystemExit(main())
