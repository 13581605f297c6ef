"""DVC stages ``ingest``, ``normalise``, ``crop_align`` and ``pose``: ``python -m stages.preprocess <stage> …``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from eat.config import load_params
from eat.preprocess import stages
from eat.preprocess.ingest import ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=["ingest", "normalise", "crop_align", "pose"])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--input", type=Path, help="input table (not for ingest)")
    parser.add_argument("--out-dir", type=Path, required=True, help="per-clip outputs (ingest: the table folder)")
    parser.add_argument("--table", type=Path, help="output table (not for ingest)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_params(args.params)
    if args.stage == "ingest":
        manifest, quarantine = ingest(params, args.out_dir)
        print(f"ingest: {len(manifest)} clips → {args.out_dir / 'manifest.parquet'}, {len(quarantine)} quarantined")
    else:
        getattr(stages, args.stage)(params, args.input, args.out_dir, args.table)


if __name__ == "__main__":
    main()
