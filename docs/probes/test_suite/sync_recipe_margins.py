"""Margins of the lip-sync expert's learning test (tests/test_sync_expert_training.py) over seeds and torch threads.

Run from the repository root with PYTHONPATH=. ; output in sync_recipe_margins.txt."""
import tempfile
from pathlib import Path

import numpy as np

from eat.io.reproducible import reproducible_torch
from eat.sync.train import (
    evaluate_sync,
    expert_embedder,
    load_sync_clips,
    min_train_frames,
    pair_accuracy,
    sync_table,
    usable,
)
from tests.supervision_fixture import sync_cfg, write_supervision_fixture
from tests.test_sync_expert_training import _plain_sync_loop

pose, audio = write_supervision_fixture(Path(tempfile.mkdtemp()) / "clips")
cfg = sync_cfg(base_channels=4, steps=400, batch_size=16, lr=1e-3)
table = sync_table(pose, audio)
train, _ = usable(load_sync_clips(table[table.split == "train"], cfg.face_size), min_train_frames(cfg))
held = load_sync_clips(table[table.split == "test"], cfg.face_size)
for seed in (0, 1, 2):
    for threads in (1, 2):
        losses = []
        m = _plain_sync_loop(cfg, train, seed, threads=threads, losses=losses)
        with reproducible_torch(threads=1, deterministic=True):
            s = evaluate_sync(held, expert_embedder(m))
            p = pair_accuracy(m, usable(held, max(cfg.frames, cfg.mel_frames) + cfg.negative_min_shift)[0], seed)
        t = len(losses) // 10
        print(seed, threads, "loss ratio", round(np.mean(losses[-t:]) / np.mean(losses[:t]), 3),
              "recovery", s["offset_recovery_rate"],
              "conf ratio", round(s["confidence_in_sync"] / s["confidence_shuffled"], 2),
              "pair acc", p["accuracy"], flush=True)
