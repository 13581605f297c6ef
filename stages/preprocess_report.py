"""DVC stage ``preprocess_report``: counts, quarantine reasons and errors against the synthetic ground truth."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from eat import paths
from eat.config import load_params
from eat.io.atomic import write_text_atomic
from eat.preprocess.evaluate import evaluate

STAGES = ("ingest", "normalise", "crop_align", "pose")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--interim", type=Path, default=paths.INTERIM)
    parser.add_argument("--features", type=Path, default=paths.FEATURES)
    parser.add_argument("--out", type=Path, default=paths.PREPROCESS_REPORTS)
    args = parser.parse_args()
    params = load_params(args.params)
    final = pd.read_parquet(args.features / "pose.parquet")
    quarantine = pd.concat([pd.read_parquet(folder / f"{stage}_quarantine.parquet")
                            for stage, folder in zip(STAGES, [args.interim] * 3 + [args.features], strict=True)])
    metrics: dict = {
        "clips": {"manifest": len(pd.read_parquet(args.interim / "manifest.parquet")), "final": len(final)},
        "quarantined": {stage: int((quarantine.stage == stage).sum()) for stage in STAGES},
        "frames": int(final.n_frames.sum()),
    }
    errors = evaluate(final, Path(params.data.transcripts).parent, params.crop_align.size) \
        if params.data.transcripts else pd.DataFrame()
    if not errors.empty:
        metrics["vs_groundtruth"] = {
            dataset: {k: round(float(v), 3) for k, v in group.drop(columns=["clip_id", "dataset"]).mean().items()}
            for dataset, group in errors.groupby("dataset")}
        metrics["vs_groundtruth"]["av_lag_frames_nonzero"] = int((errors.av_lag_frames != 0).sum())
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_text_atomic(args.out / "quarantine.md", _quarantine_markdown(quarantine))
    print(json.dumps(metrics, indent=2))


def _quarantine_markdown(quarantine: pd.DataFrame) -> str:
    lines = ["# Quarantined clips", "", f"{len(quarantine)} clips or files could not be used.", ""]
    if len(quarantine):
        lines += ["| stage | clip | reason |", "|---|---|---|"]
        lines += [f"| {r.stage} | {r.clip_id} | {r.reason.splitlines()[0]} |" for r in quarantine.itertuples()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
