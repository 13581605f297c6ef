"""DVC stage ``synth``: generate the embedded synthetic MEAD / LRW / VoxCeleb2 miniature."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import pandas as pd

from eat import paths
from eat.config import load_params
from eat.io.atomic import write_text_atomic
from eat.synth.generate import generate
from eat.synth.preview import contact_sheet, sample_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, default=paths.SYNTH)
    parser.add_argument("--reports", type=Path, default=paths.SYNTH_REPORTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_params(args.params)
    start = time.perf_counter()
    clips = generate(params, args.out)
    out, reports = Path(args.out), Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    frames = pd.read_parquet(out / "groundtruth" / "frames.parquet", columns=["clip_id", "frame", "landmarks"])
    contact_sheet(clips, frames, out, reports / "contact_sheet.png")
    sample_video(clips, out, reports / "sample.mp4")
    summary = {
        "clips": {k: int(v) for k, v in clips.groupby("dataset").size().items()},
        "frames": int(clips.n_frames.sum()),
        "hours": round(float((clips.n_frames / clips.fps).sum() / 3600), 4),
        "identities": int(clips.identity.nunique()),
        "bytes": sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and "parts" not in f.parts),
    }
    write_text_atomic(reports / "summary.json", json.dumps(summary, indent=2) + "\n")
    print(f"synth: {summary['clips']} clips under {out}/ in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
