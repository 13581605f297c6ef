"""DVC stage ``fit_pca``: mean and principal axes of the expression deformation E (official U/mean layout)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from eat import paths
from eat.config import load_params
from eat.latent.pca import fit_pca
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--latent-table", type=Path, default=paths.LATENT_TABLE)
    parser.add_argument("--out", type=Path, default=paths.PCA)
    parser.add_argument("--reports", type=Path, default=paths.PCA_REPORTS)
    args = parser.parse_args()

    def body() -> None:
        metrics = fit_pca(load_params(args.params), args.latent_table, args.out, args.reports)
        print(f"fit_pca: {metrics['components']} of {metrics['dimension']} axes keep "
              f"{metrics['explained_variance_kept']:.3f} of the variance of E over {metrics['videos']} videos; "
              f"held-out reconstruction {json.dumps(metrics['reconstruction_heldout'])} -> {args.out}")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
