"""What the lip-sync expert's embeddings look like on the InfoNCE plateau, on the stage's path (2 threads).

    python docs/probes/sync_expert/plateau.py 20231002 [key=value ...]   # seed, then sync_expert changes

Trains the stage's Trainer on the stage's data and, at steps 0, 100, 300, 1000, 2000 and 3000, embeds 8 fixed
batches in eval mode: rows whose encoder output is all zero, live and active ReLU units, the mean and spread of
the cosine between windows of one modality, and the mean cosine of in-sync pairs against all audio-face pairs.
"""

import json
import sys

import numpy as np
import torch
import yaml

from eat.config import load_params
from eat.io.reproducible import SUPERVISOR_THREADS, reproducible_torch
from eat.sync.train import Trainer, load_sync_clips, make_contrastive_batch, min_train_frames, sync_table, usable


def describe(emb: torch.Tensor) -> dict:
    """One modality's embeddings (unit-norm; L2 normalising keeps zero rows zero and the sign of every unit, so the
    dead and active counts are the encoder's own)."""
    cos = (emb @ emb.T)[~torch.eye(len(emb), dtype=torch.bool)]
    return {"zero_rows": float((emb.norm(dim=1) == 0).float().mean()), "live_dims": int((emb > 0).any(0).sum()),
            "active_frac": round(float((emb > 0).float().mean()), 3), "mean_cos": round(float(cos.mean()), 3),
            "std_cos": round(float(cos.std()), 4)}


def main() -> None:
    seed = int(sys.argv[1])
    params = load_params("params.yaml")
    change = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in sys.argv[2:])}
    cfg = params.sync_expert.model_copy(update=change)
    table = sync_table("data/features/pose.parquet", "data/features/audio.parquet")
    train, _ = usable(load_sync_clips(table[table.split == "train"], cfg.face_size), min_train_frames(cfg))
    trainer = Trainer(cfg, train[0].mel.shape[1], seed)
    probe = [make_contrastive_batch(train, cfg, 999, s) for s in range(8)]
    model = trainer.model

    def report(step: int) -> None:
        model.eval()
        with torch.no_grad(), reproducible_torch(threads=SUPERVISOR_THREADS):
            audio = torch.cat([model(*b)[0] for b in probe])
            face = torch.cat([model(*b)[1] for b in probe])
        model.train()
        loss = round(float(np.mean(trainer.losses[-100:])), 3) if trainer.losses else None
        print(json.dumps({"step": step, "loss": loss, "audio": describe(audio),
                          "face": describe(face), "pos_cos": round(float((audio * face).sum(1).mean()), 3),
                          "all_cos": round(float((audio @ face.T).mean()), 3)}), flush=True)

    report(0)
    step = 0
    for until in (100, 300, 1000, 2000, 3000):
        with reproducible_torch(threads=SUPERVISOR_THREADS, deterministic=True):     # the stage's worker's settings
            while step < until:
                trainer.train_step(train, step)
                step += 1
        report(until)


if __name__ == "__main__":
    main()
