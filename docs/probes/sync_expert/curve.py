"""Lip-sync expert held-out offset recovery and confidence as a curve over steps, at one seed.

    python docs/probes/sync_expert/curve.py --pose-table data/features/pose.parquet \
        --audio-table data/features/audio.parquet --seed 1 --set steps=6400 --every 800

Uses the stage's own code (eat.sync.train) and data; the model at step k is the one the stage would train with
``steps`` = k only when the schedule does not depend on ``steps`` (the default: constant lr).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import yaml

from eat.config import load_params
from eat.io.reproducible import SUPERVISOR_THREADS, reproducible_torch
from eat.sync.train import (
    Trainer,
    evaluate_sync,
    expert_embedder,
    load_sync_clips,
    min_train_frames,
    sync_table,
    usable,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", required=True)
    parser.add_argument("--audio-table", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="sync_expert key to change (YAML value); repeatable")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--every", type=int, default=800, help="evaluate every this many steps")
    parser.add_argument("--threads", type=int, default=SUPERVISOR_THREADS,
                        help="torch threads for training (the stage's by default; 1 for two probes side by side)")
    args = parser.parse_args()

    params = load_params(args.params)
    change = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = params.sync_expert.model_copy(update=change)
    seed = params.seed if args.seed is None else args.seed
    table = sync_table(args.pose_table, args.audio_table)
    train, _ = usable(load_sync_clips(table[table.split == "train"], cfg.face_size), min_train_frames(cfg))
    held = load_sync_clips(table[table.split == "test"], cfg.face_size)
    print(json.dumps({"train_clips": len(train), "heldout_clips": len(held), "change": change, "seed": seed}))

    trainer = Trainer(cfg, train[0].mel.shape[1], seed)
    start = time.perf_counter()
    for until in range(args.every, cfg.steps + 1, args.every):
        trainer.model.train()
        with reproducible_torch(threads=args.threads, deterministic=True):     # the stage's worker's, by default
            for step in range(until - args.every, until):
                trainer.train_step(train, step)
        with reproducible_torch(threads=1, deterministic=True):
            held_out = evaluate_sync(held, expert_embedder(trainer.model))
        ratio = held_out["confidence_in_sync"] / max(held_out["confidence_shuffled"], 1e-9)
        print(json.dumps({"step": until, "seconds": round(time.perf_counter() - start),
                          "loss": round(float(np.mean(trainer.losses[-args.every // 4:])), 3),
                          "offset_recovery_rate": held_out["offset_recovery_rate"],
                          "by_dataset": held_out.get("offset_recovery_by_dataset"),
                          "confidence_ratio": round(ratio, 3)}), flush=True)


if __name__ == "__main__":
    main()
