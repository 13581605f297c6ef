"""Probe: Emotion-FAN pre-trained on still clips of many synthetic identities, then trained on the MEAD clips.

    python docs/probes/emotion_fan/stills/pretrain_probe.py --stills /tmp/stills_a.npz /tmp/stills_b.npz \
        --pretrain-steps 2000 --seed 2 --threads 1 [--set steps=5000] [--mix]

Phase 1 (``--pretrain-steps``, 0: none): the stage's Trainer and batches on the still clips (render_stills.py) alone.
Phase 2: a fresh Trainer of the stage's recipe (``steps`` from params or ``--set``) starting from phase 1's weights,
on the MEAD training clips (with ``--mix``: on the MEAD clips and the still clips together). Every ``--every``
steps of both phases: accuracy on every held-out clip and the paper set (ema_curve.py's ``scores``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from eat.emotion.train import EmotionClip, Trainer
from eat.io.reproducible import reproducible_torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ema_curve import probe_data, scores  # noqa: E402  (the probe folder's data and scorer)


def still_clips(paths: list[str]) -> list[EmotionClip]:
    clips = []
    for path in paths:
        with np.load(path) as d:
            clips += [EmotionClip(f"still_{path}_{i}", int(label), frames)
                      for i, (label, frames) in enumerate(zip(d["labels"], d["images"], strict=True))]
    return clips


def run(trainer: Trainer, clips, held, mask, steps: int, every: int, threads: int, phase: str) -> None:
    start = time.perf_counter()
    trainer.model.train()
    for step in range(steps):
        with reproducible_torch(threads=threads, deterministic=True):
            trainer.train_step(clips, step)
        if (step + 1) % every == 0 or step + 1 == steps:
            with reproducible_torch(threads=threads, deterministic=True):
                row = {"phase": phase, "step": step + 1, "seconds": round(time.perf_counter() - start),
                       "loss": round(float(np.mean(trainer.losses[-250:])), 3),
                       "trained": scores(trainer.model, held, mask)}
            trainer.model.train()
            print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", default="data/features/pose.parquet")
    parser.add_argument("--stills", nargs="+", required=True)
    parser.add_argument("--pretrain-steps", type=int, default=2000)
    parser.add_argument("--mix", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    cfg, seed, train, held, mask = probe_data(args)
    stills = still_clips(args.stills)
    print(json.dumps({"seed": seed, "cfg": cfg.model_dump(), "stills": len(stills), "mix": args.mix,
                      "pretrain_steps": args.pretrain_steps}), flush=True)
    torch.set_num_threads(args.threads)
    second = Trainer(cfg, seed)
    if args.pretrain_steps:
        first = Trainer(cfg.model_copy(update={"steps": args.pretrain_steps}), seed)
        run(first, stills, held, mask, args.pretrain_steps, args.every, args.threads, "stills")
        second.model.load_state_dict(first.model.state_dict())
    run(second, train + stills if args.mix else train, held, mask, cfg.steps, args.every, args.threads, "mead")


if __name__ == "__main__":
    main()
