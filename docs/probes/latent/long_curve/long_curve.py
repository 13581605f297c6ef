"""How far does the full osfv stage get with more steps? Runs ``stages.train_latent --variant osfv`` on the
committed data with a long, constant learning rate (after the warm-up), keeps a copy of every Ray Train
checkpoint it writes, then scores each kept checkpoint on the stage's own held-out protocol (the stage's
``evaluate``: autoencode and neutral-source face PSNR, copy baseline, face found).

Run from the repository root, alone on the machine (two torch threads):
    python docs/probes/latent/long_curve/long_curve.py --steps 6000 --every 1000 --out /tmp/long_curve
Writes ``curve.jsonl`` (one line per kept checkpoint) and the run's ``train_log.csv`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from eat.config import deep_merge, load_params, read_yaml, write_yaml_atomic
from eat.latent.data import load_bank
from eat.latent.evaluate import evaluate
from eat.latent.train import training_tables
from eat.models.latent import LatentNetworks


def run_and_keep(params: Path, out: Path, every: int) -> None:
    """Train in ``out/run``; copy each checkpoint whose step is a multiple of ``every`` to ``out/kept/<step>``."""
    cmd = [sys.executable, "-m", "stages.train_latent", "--variant", "osfv", "--params", str(params),
           "--out", str(out / "run" / "model"), "--reports", str(out / "run" / "reports")]
    proc = subprocess.Popen(cmd)
    kept, seen = out / "kept", set()
    while True:
        done = proc.poll() is not None
        for state in (out / "run" / "model" / "ray").rglob("checkpoint_*/state.pt"):
            if state in seen:           # each checkpoint is read once, not at every poll
                continue
            try:
                step = int(torch.load(state, weights_only=False, map_location="cpu")["step"])
            except Exception:           # being written: the next poll sees it whole
                continue
            seen.add(state)
            if step % every == 0 and not (kept / str(step)).exists():
                shutil.copytree(state.parent, kept / f".{step}")
                (kept / f".{step}").rename(kept / str(step))
        if done:
            break
        time.sleep(5)
    if proc.returncode:
        raise SystemExit(f"stage failed: {proc.returncode}")


def score(out: Path, params_path: Path, frames_per_clip: int) -> None:
    p = load_params(params_path)
    _, held = training_tables("data/features/pose.parquet")
    bank = load_bank(held, p.signal.image_size, p.crop_align.size)
    torch.set_num_threads(2)
    with (out / "curve.jsonl").open("a") as f:
        for folder in sorted((out / "kept").iterdir(), key=lambda d: int(d.name)):
            if folder.name.startswith("."):
                continue
            state = torch.load(folder / "state.pt", weights_only=False, map_location="cpu")
            nets = LatentNetworks.from_config(p.latent)
            nets.load_state_dict(state["nets"])
            metrics, _ = evaluate(nets, bank, frames_per_clip, p.latent_train.face_margin,
                                  face_detector=p.crop_align.backend)
            row = {"step": int(folder.name), "autoencode_face": metrics["autoencode"]["psnr_face"],
                   "autoencode_found": metrics["autoencode"].get("face_found_fraction"),
                   **{f"{s}_{k}": metrics[s][k] for s in ("neutral_source", "neutral_source_moving")
                      for k in ("psnr_face", "psnr_face_copy_source", "face_found_fraction")}}
            print(json.dumps(row), flush=True)
            f.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--frames-per-clip", type=int, default=8)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=YAML",
                        help="latent_train override, e.g. --set lr_schedule=step")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    overrides = {"steps": args.steps, "lr_schedule": "step", "lr_milestones": [], "checkpoint_every": args.every}
    for item in args.set:
        key, value = item.split("=", 1)
        overrides[key] = json.loads(value) if value[:1] in "[{0123456789-" else value
    params = args.out / "params.yaml"
    write_yaml_atomic(params, deep_merge(read_yaml(Path("params.yaml")), {"latent_train": overrides}))
    run_and_keep(params, args.out, args.every)
    shutil.copy(args.out / "run" / "reports" / "train_log.csv", args.out / "train_log.csv")
    score(args.out, params, args.frames_per_clip)


if __name__ == "__main__":
    main()
