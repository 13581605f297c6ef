"""Emotion-FAN held-out accuracy over steps for the trained weights, an EMA of them, and mirrored-clip averaging.

    python docs/probes/emotion_fan/ema_curve.py --pose-table data/features/pose.parquet --seed 2 \
        --set steps=7500 --every 1000 --decay 0.999 --threads 1

One training run (the stage's own code and batches; the EMA does not change the trajectory) scored four ways on
every held-out clip and on the paper set: the weights as trained, their exponential moving average
(torch.optim.swa_utils, BatchNorm statistics averaged too), and each with the clip's logits averaged with those
of its mirror image (Emotion-FAN trains with flips).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import yaml
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from eat.config import EMOTIONS, load_params
from eat.emotion.train import (
    Trainer,
    emotion_tables,
    frames_tensor,
    load_emotion_clips,
    protocol_clips,
)
from eat.io.reproducible import reproducible_torch


def scores(model, clips, protocol_mask) -> dict:
    """Accuracy on every clip, paper-set mean over emotions; plain and with mirrored-clip logits averaged."""
    model.eval()
    out = {}
    with torch.inference_mode():
        logits = [(model(frames_tensor(c.frames)[None])[0], model(frames_tensor(c.frames[:, :, ::-1])[None])[0])
                  for c in clips]
    truth = np.array([c.label for c in clips])
    for name, pred in (("plain", np.array([int(a.argmax()) for a, _ in logits])),
                       ("flip", np.array([int((a.softmax(0) + b.softmax(0)).argmax()) for a, b in logits]))):
        every = float(np.mean(pred == truth))
        t, p = truth[protocol_mask], pred[protocol_mask]
        paper = float(np.mean([np.mean(p[t == i] == i) for i in range(len(EMOTIONS)) if (t == i).any()]))
        out[name] = {"every": round(every, 4), "paper": round(paper, 4),
                     "neutral_right": int(np.sum((pred == truth) & (truth == EMOTIONS.index("neutral"))))}
    return out


def probe_data(args: argparse.Namespace) -> tuple:
    """From ``--params``, ``--set``, ``--seed`` and ``--pose-table``: the classifier's config, the seed, the training
    and held-out clips as the stage loads them, and the mask of the held-out clips in the paper set."""
    params = load_params(args.params)
    cfg = params.emotion_classifier.model_copy(update={k: yaml.safe_load(v) for k, v in
                                                       (s.split("=", 1) for s in args.set)})
    seed = params.seed if args.seed is None else args.seed
    train_table, test_table = emotion_tables(args.pose_table)
    train = load_emotion_clips(train_table, cfg.input_size, params.signal.image_size)
    held = load_emotion_clips(test_table, cfg.input_size, params.signal.image_size)
    paper_uids = {c.uid for c in protocol_clips(test_table, held)}
    return cfg, seed, train, held, np.array([c.uid in paper_uids for c in held])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--pose-table", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--decay", type=float, default=0.999)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    cfg, seed, train, held, mask = probe_data(args)
    print(json.dumps({"seed": seed, "cfg": cfg.model_dump(), "decay": args.decay}), flush=True)

    trainer = Trainer(cfg, seed)
    ema = AveragedModel(trainer.model, multi_avg_fn=get_ema_multi_avg_fn(args.decay), use_buffers=True)
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    trainer.model.train()
    for step in range(cfg.steps):
        with reproducible_torch(threads=args.threads, deterministic=True):   # --threads: probes share the CPU
            trainer.train_step(train, step)
            ema.update_parameters(trainer.model)
        if (step + 1) % args.every == 0:
            with reproducible_torch(threads=args.threads, deterministic=True):
                row = {"step": step + 1, "seconds": round(time.perf_counter() - start),
                       "loss": round(float(np.mean(trainer.losses[-250:])), 3),
                       "trained": scores(trainer.model, held, mask), "ema": scores(ema.module, held, mask)}
            trainer.model.train()
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
