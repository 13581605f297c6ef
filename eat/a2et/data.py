"""A2ET's inputs and targets per clip, in memory, and the window batches drawn from them (Sec. 3.1.2).

Per clip (joined by ``uid`` from data/features/latent.parquet and data/features/audio.parquet):
mel (T, n_mels) and speech logits (T, steps, 29) from the audio features; the head pose the latent
model sees — angles (deg) and translation T_i, as A2ET's pose input and the drawn head-box image; the
targets PE_i (the PCA coefficients of E_i) and K_i = R_i K_c + T_i + E_i; the source frame's keypoint
logits (the frozen keypoint detector on frame 0, A2ET's "source latent"), and for the rendering phase
the aligned frames and landmarks.

Frame i's window is frames i − w … i + w; at the clip's edges the first or last frame repeats
(:func:`window_indices`). Every batch is a pure function of (seed, step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from eat.a2et.pose_image import head_box_images
from eat.io.video import read_aligned
from eat.latent.data import to_tensor
from eat.latent.pca import ExpressionBasis
from eat.models.a2et import source_keypoint_logits
from eat.models.latent import LatentNetworks


@dataclass(frozen=True)
class Source:
    """The source image a clip is generated from and what the frozen latent model says of it."""

    frame: np.ndarray            # (S, S, 3) uint8
    logits: np.ndarray           # (k, D, h, w) keypoint-detector logits (A2ET's source latent)
    canonical: np.ndarray        # (k, 3) K_c
    keypoints: np.ndarray        # (k, 3) its K = R K_c + T + E
    pe: np.ndarray               # (n,) PCA coefficients of its E


@dataclass(frozen=True)
class A2ETClip:
    """One clip's arrays (float32 unless noted); T frames, k keypoints."""

    uid: str
    dataset: str
    emotion: str
    mel: np.ndarray              # (T, n_mels)
    speech: np.ndarray           # (T, steps, 29)
    pose: np.ndarray             # (T, 6) yaw, pitch, roll [deg], tx, ty, tz of the latent model
    pose_image: np.ndarray       # (T, p, p) uint8 drawn head box
    pe: np.ndarray               # (T, n) PCA coefficients of E_i
    keypoints: np.ndarray        # (T, k, 3) K_i (targets, with K_c of the clip's own frame 0)
    rotation: np.ndarray         # (T, 3, 3)
    translation: np.ndarray      # (T, 3)
    source: Source               # pretraining: the clip's frame 0
    audio: str                   # the clip's 16 kHz wav (for videos with sound)
    frames: np.ndarray | None = None      # (T, S, S, 3) uint8, rendering phase and evaluation only
    landmarks: np.ndarray | None = None   # (T, 68, 2) in pixels of the S × S frames

    @property
    def n_frames(self) -> int:
        return len(self.mel)


def a2et_table(latent_table: Path | str, audio_table: Path | str) -> pd.DataFrame:
    """Rows of the latent table with the audio-feature npz path (``features``), sorted by uid."""
    latent = pd.read_parquet(latent_table)
    audio = pd.read_parquet(audio_table)[["uid", "features"]]
    table = latent.merge(audio, on="uid", how="inner", validate="one_to_one")
    return table.sort_values("uid").reset_index(drop=True)


def split_tables(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pretraining clips: the train split of every dataset, held-out clips: MEAD test identities)."""
    train = table[table.split == "train"].reset_index(drop=True)
    held = table[(table.split == "test") & (table.dataset == "MEAD")].reset_index(drop=True)
    if train.empty:
        raise ValueError("no clip of the train split has both latents and audio features; check the quarantines "
                         "of extract_latent and audio_features")
    return train, held


def load_clip(row, basis: ExpressionBasis, nets: LatentNetworks, image_size: int, aligned_size: int,
              pose_image_size: int, with_frames: bool) -> A2ETClip:
    """Read one row of :func:`a2et_table` into an :class:`A2ETClip` (lengths checked against ``n_frames``)."""
    with np.load(row.latent) as z:
        latent = {k: z[k] for k in ("angles", "translation", "rotation", "expression", "keypoints", "canonical")}
    with np.load(row.features) as z:
        mel, speech = z["mel"], z["speech"]
    lengths = {"latent": len(latent["angles"]), "mel": len(mel), "speech": len(speech)}
    if set(lengths.values()) != {row.n_frames}:
        raise ValueError(f"{row.uid}: frame counts {lengths} differ from the clip's {row.n_frames}; "
                         "re-run audio_features and extract_latent")
    frames, landmarks = read_aligned(row.aligned_arrays, image_size, aligned_size)
    if len(frames) != row.n_frames:
        raise ValueError(f"{row.aligned_arrays}: {len(frames)} frames stored, the table says {row.n_frames}")
    with torch.no_grad():
        # copied out of torch's buffer: kept as is, each clip's small array pinned ~11 MB of freed temporaries in
        # the heap (measured 11.3 vs 0.5 MB of resident memory per clip; 10 GB over MEAD's training clips)
        logits = source_keypoint_logits(nets.kp_detector, to_tensor(frames[:1]))[0].numpy().copy()
    pose = np.concatenate([latent["angles"], latent["translation"]], axis=1).astype(np.float32)
    pe = basis.encode(latent["expression"])
    return A2ETClip(uid=row.uid, dataset=row.dataset, emotion=row.emotion, mel=mel, speech=speech, pose=pose,
                    pose_image=head_box_images(pose, pose_image_size),
                    pe=pe, keypoints=latent["keypoints"], rotation=latent["rotation"],
                    translation=latent["translation"], audio=row.audio_norm,
                    source=Source(frames[0], logits, latent["canonical"], latent["keypoints"][0], pe[0]),
                    frames=frames if with_frames else None,
                    landmarks=landmarks[:row.n_frames] if with_frames else None)


def window_indices(centres: np.ndarray, n_frames: int, half: int) -> np.ndarray:
    """(B,) centre frames → (B, 2·half + 1) frame indices, clamped at the clip's edges (edge frames repeat)."""
    return np.clip(np.asarray(centres)[:, None] + np.arange(-half, half + 1), 0, n_frames - 1)


@dataclass
class WindowBatch:
    """B windows as tensors: inputs (B, W, …), source logits (B, k, D, h, w), centre-frame targets."""

    speech: torch.Tensor
    pose: torch.Tensor
    pose_image: torch.Tensor     # (B, W, 1, p, p) in [0, 1]
    mel: torch.Tensor
    source_logits: torch.Tensor
    pe: torch.Tensor             # (B, n)
    keypoints: torch.Tensor      # (B, k, 3)
    canonical: torch.Tensor      # (B, k, 3) K_c of the source
    rotation: torch.Tensor       # (B, 3, 3)
    translation: torch.Tensor    # (B, 3)

    def __len__(self) -> int:
        return len(self.pe)


def window_batch(clips: list[A2ETClip], clip_index: np.ndarray, centres: np.ndarray, half: int,
                 device: torch.device | str = "cpu") -> WindowBatch:
    """The windows centred on frame ``centres[b]`` of clip ``clips[clip_index[b]]``."""
    rows: dict[str, list[np.ndarray]] = {f: [] for f in WindowBatch.__dataclass_fields__}
    for c, i in zip(clip_index, centres, strict=True):
        clip = clips[int(c)]
        idx = window_indices(np.array([i]), clip.n_frames, half)[0]
        rows["speech"].append(clip.speech[idx])
        rows["pose"].append(clip.pose[idx])
        rows["pose_image"].append(clip.pose_image[idx, None].astype(np.float32) / 255.0)
        rows["mel"].append(clip.mel[idx])
        rows["source_logits"].append(clip.source.logits)
        rows["pe"].append(clip.pe[i])
        rows["keypoints"].append(clip.keypoints[i])
        rows["canonical"].append(clip.source.canonical)
        rows["rotation"].append(clip.rotation[i])
        rows["translation"].append(clip.translation[i])
    return WindowBatch(**{k: torch.from_numpy(np.stack(v)).to(device) for k, v in rows.items()})


class WindowSampler:
    """Batches of (clip, first frame) for runs of ``length`` consecutive frames, uniform over all such runs.

    ``length`` 1: single windows (latent phase); ``length`` = the sync expert's frame count: the rendering phase.
    """

    def __init__(self, clips: list[A2ETClip], length: int, seed: int):
        usable = [c for c, clip in enumerate(clips) if clip.n_frames >= length]
        if not usable:
            raise ValueError(f"no clip has the {length} frames a training sample needs")
        counts = np.array([clips[c].n_frames - length + 1 for c in usable])
        self.clip = np.repeat(usable, counts)
        self.start = np.concatenate([np.arange(n) for n in counts])
        self.length, self.seed = length, seed

    def __call__(self, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        pick = np.random.default_rng([self.seed, step]).integers(0, len(self.clip), batch_size)
        return self.clip[pick], self.start[pick]

    def expand(self, clip: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every frame of each run, run-major: (B · length,) clip indices and frame indices."""
        return np.repeat(clip, self.length), (start[:, None] + np.arange(self.length)).ravel()


@dataclass
class RunBatch:
    """What rendering B runs of L consecutive frames needs: sources (B, 3, S, S), their keypoints (B, k, 3), the
    ground-truth frames (B·L, 3, S, S) and landmarks (B·L, 68, 2) px, and the runs' mel rows (B, L, n_mels)."""

    source: torch.Tensor
    kp_source: torch.Tensor
    real: torch.Tensor
    landmarks: np.ndarray
    mel: torch.Tensor


def run_batch(clips: list[A2ETClip], run_clip: np.ndarray, run_start: np.ndarray, length: int,
              device: torch.device | str = "cpu") -> RunBatch:
    """The rendering side of runs ``(run_clip[b], run_start[b] … + length)`` (frames loaded with the clips)."""
    frames = [(c, s + i) for c, s in zip(run_clip, run_start, strict=True) for i in range(length)]
    return RunBatch(source=to_tensor(np.stack([clips[c].source.frame for c in run_clip])).to(device),
                    kp_source=torch.from_numpy(np.stack([clips[c].source.keypoints for c in run_clip])).to(device),
                    real=to_tensor(np.stack([clips[c].frames[i] for c, i in frames])).to(device),
                    landmarks=np.stack([clips[c].landmarks[i] for c, i in frames]),
                    mel=torch.from_numpy(np.stack([clips[c].mel[s:s + length]
                                                   for c, s in zip(run_clip, run_start, strict=True)])).to(device))
