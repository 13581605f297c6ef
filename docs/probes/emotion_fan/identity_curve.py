"""Emotion-FAN held-out accuracy as a curve over steps, trained on the first N MEAD training identities.

    python docs/probes/emotion_fan/identity_curve.py --pose-table data/features/pose.parquet \
        --identities 10 --set steps=3000 --every 500

Uses the stage's own code (eat.emotion.train) on crops cut from frames at ``signal.image_size`` (what the
classifier judges). Identities are taken alternately male and female in sorted order, so a subset stays balanced.
Held-out: every test clip, and the paper's evaluation set (level 3 and neutral) with its mean over emotions.
A larger synthetic MEAD comes from the pipeline's own stages run on a params copy with more
``synth.mead.train_identities`` (stages.synth, then stages.preprocess ingest/normalise/crop_align/pose).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import yaml

from eat.config import load_params
from eat.emotion.train import (
    Trainer,
    emotion_tables,
    evaluate_emotion,
    load_emotion_clips,
    protocol_clips,
)
from eat.io.reproducible import SUPERVISOR_THREADS, reproducible_torch


def balanced_identities(identities: list[str], n: int) -> list[str]:
    """The first ``n`` of male and female identities taken in turn (sorted within each)."""
    men = sorted(i for i in identities if i.startswith("M"))
    women = sorted(i for i in identities if not i.startswith("M"))
    return [i for pair in itertools.zip_longest(men, women) for i in pair if i][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", required=True)
    parser.add_argument("--identities", type=int, default=0, help="training identities used (0 = all)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="emotion_classifier key to change (YAML value); repeatable")
    parser.add_argument("--train-levels", default="1,2,3",
                        help="intensity levels of the emotional training clips kept (neutral always), e.g. 2,3")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--every", type=int, default=500, help="evaluate every this many steps")
    args = parser.parse_args()

    params = load_params(args.params)
    change = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = params.emotion_classifier.model_copy(update=change)
    seed = params.seed if args.seed is None else args.seed
    train_table, test_table = emotion_tables(args.pose_table)
    if args.identities:
        keep = balanced_identities(list(train_table.identity.unique()), args.identities)
        train_table = train_table[train_table.identity.isin(keep)].reset_index(drop=True)
    levels = [int(v) for v in args.train_levels.split(",")]
    keep = (train_table.emotion == "neutral") | train_table.level.isin(levels)
    train_table = train_table[keep].reset_index(drop=True)
    train = load_emotion_clips(train_table, cfg.input_size, params.signal.image_size)
    held = load_emotion_clips(test_table, cfg.input_size, params.signal.image_size)
    protocol = protocol_clips(test_table, held)
    print(json.dumps({"identities": sorted(train_table.identity.unique()), "train_clips": len(train),
                      "change": change, "train_levels": levels, "seed": seed}))

    trainer = Trainer(cfg, seed)
    start = time.perf_counter()
    for until in range(args.every, cfg.steps + 1, args.every):
        trainer.model.train()
        with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):     # the stage's worker's settings
            for step in range(until - args.every, until):
                trainer.train_step(train, step)
        with reproducible_torch(threads=1, deterministic=True):
            all_clips, paper_set = evaluate_emotion(trainer.model, held), evaluate_emotion(trainer.model, protocol)
            fit = evaluate_emotion(trainer.model, train[::3])["accuracy"]
        print(json.dumps({"step": until, "seconds": round(time.perf_counter() - start),
                          "loss": round(float(np.mean(trainer.losses[-args.every // 4:])), 3),
                          "train_accuracy": fit, "heldout_accuracy": all_clips["accuracy"],
                          "protocol_mean_over_emotions": paper_set["mean_over_emotions"],
                          "protocol_by_emotion": paper_set["accuracy_by_emotion"],
                          "protocol_confusion": paper_set["confusion"]}), flush=True)


if __name__ == "__main__":
    main()
