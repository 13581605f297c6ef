"""Stage ``extract_latent``: the 3D keypoint latent of every frame of every clip (Sec. 3.1.1, Eq. 1).

For each clip: the canonical keypoints K_c of its source frame (frame 0) and, per frame i,
the head pose (yaw, pitch, roll → R_i), translation T_i, expression deformation E_i and
the composed keypoints K_i = R_i K_c + T_i + E_i, from the trained (enhanced) latent model.
These are A2ET's targets and inputs (E_i → PCA coefficients, K_c → source-latent token).
Layout in eat/schema.py. Per-clip, resumable and quarantining through
:func:`eat.preprocess.runner.run_per_clip`; the model file's hash is part of each clip's key.
"""

from __future__ import annotations

from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from eat.config import Params
from eat.io.arrays import write_npz
from eat.io.hashing import file_sha256
from eat.io.video import read_aligned_frames
from eat.latent.data import to_tensor
from eat.models.keypoints import compose_keypoints
from eat.preprocess.runner import run_per_clip
from eat.preprocess.stages import finish_stage

BATCH = 64   # frames per forward pass: bounded memory on long clips


@lru_cache(maxsize=2)
def _model(path: str):
    # local: the trainer pulls torchvision's VGG (about a second) into extract_latent's start-up
    from eat.latent.train import load_inference_model

    torch.set_num_threads(1)
    return load_inference_model(path)


@torch.no_grad()
def clip_latent(nets, frames: np.ndarray) -> dict[str, np.ndarray]:
    """Latent arrays of one clip from its (T, S, S, 3) uint8 frames (layout: eat/schema.py)."""
    canonical = nets.kp_detector(to_tensor(frames[:1]))                     # (1, k, 3)
    parts: dict[str, list[torch.Tensor]] = {"angles": [], "rotation": [], "translation": [], "expression": [],
                                            "keypoints": []}
    for start in range(0, len(frames), BATCH):
        pose = nets.he_estimator(to_tensor(frames[start:start + BATCH]))
        rotation, translation, expression = pose.transform()
        parts["angles"].append(torch.stack(pose.degrees(), -1))
        parts["rotation"].append(rotation)
        parts["translation"].append(translation)
        parts["expression"].append(expression)
        parts["keypoints"].append(compose_keypoints(canonical.expand(len(rotation), -1, -1), rotation, translation,
                                                    expression))
    out = {k: torch.cat(v).numpy().astype(np.float32) for k, v in parts.items()}
    return {"canonical": canonical[0].numpy().astype(np.float32), **out}


def extract_clip(row: dict, out_dir: Path, model: str, size: int) -> dict:
    frames = read_aligned_frames(row["aligned_arrays"], size)
    if len(frames) != row["n_frames"]:
        raise ValueError(f"{row['aligned_arrays']}: {len(frames)} frames stored, the table says {row['n_frames']}")
    arrays = clip_latent(_model(model), frames)
    out = out_dir / f"{row['uid']}.npz"
    write_npz(out, arrays)
    return {"latent": str(out)}


def extract_latent(params: Params, pose_table: Path | str, model: Path | str, out_dir: Path | str,
                   table_out: Path | str) -> pd.DataFrame:
    """Run :func:`extract_clip` over every clip of ``pose_table``; write the index and the quarantine."""
    work = partial(extract_clip, model=str(model), size=params.signal.image_size)
    settings = {"model": file_sha256(model), "image_size": params.signal.image_size}
    good, bad = run_per_clip("extract_latent", pd.read_parquet(pose_table), work, Path(out_dir),
                             input_columns=("aligned_arrays",), settings=settings,
                             code_modules=["eat.latent.extract", "eat.latent.data", "eat.models.keypoints",
                                           "eat.models.head_pose", "eat.models.keypoint_detector"],
                             workers=params.ray.workers, address=params.ray.address)
    return finish_stage("extract_latent", good, bad, Path(table_out))
