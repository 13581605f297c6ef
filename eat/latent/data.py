"""Frames, landmarks and head poses of the aligned clips, in memory, and the training pairs drawn from them.

The latent model trains on (source, driving) frame pairs of one identity (Sec. 3.1.1).
``osfv`` mode draws both frames from one clip, as OSFV does. ``enhanced`` mode (the paper's
change) draws the driving frame of an emotional MEAD clip and the source frame from the
*neutral* clip of the same identity and sentence, so the model learns to move a neutral
face into an emotional one; clips without a neutral partner (neutral MEAD, LRW, VoxCeleb2)
keep same-clip pairs.

Every batch is a pure function of (seed, step): a resumed run draws exactly the batches an
uninterrupted one would, whatever the number of data-parallel workers (each worker takes its
slice of the same global batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from eat.io.video import read_aligned

ALIGNED_LANDMARK_SPACE = "crop pixels of the aligned frames (crop_align.size)"


@dataclass(frozen=True)
class FrameBank:
    """Every frame of a set of clips at ``size`` × ``size``.

    frames: (N, S, S, 3) uint8 RGB; landmarks: (N, 68, 2) float32 in pixels of the S×S frame;
    pose: (N, 6) float32 yaw, pitch, roll [deg], tx, ty, tz (eat/schema.py); clip: (N,) int32 index
    into ``clips``; start: (C + 1,) int64 first frame of each clip (start[c] … start[c+1] − 1).
    """

    clips: pd.DataFrame
    frames: np.ndarray
    landmarks: np.ndarray
    pose: np.ndarray
    clip: np.ndarray
    start: np.ndarray

    @property
    def size(self) -> int:
        return int(self.frames.shape[1])

    def clip_frames(self, c: int) -> np.ndarray:
        """Frame indices of clip ``c``."""
        return np.arange(self.start[c], self.start[c + 1])


def load_bank(table: pd.DataFrame, size: int, aligned_size: int) -> FrameBank:
    """Read every clip of ``table`` (rows of data/features/pose.parquet) into one :class:`FrameBank`."""
    frames, landmarks, poses, clip_ids = [], [], [], []
    table = table.reset_index(drop=True)
    for c, row in enumerate(table.itertuples(index=False)):
        video, lm = read_aligned(row.aligned_arrays, size, aligned_size)
        pose = np.load(row.pose)
        n = min(len(video), len(lm), len(pose))
        if n != row.n_frames:
            raise ValueError(f"{row.aligned_arrays}: {len(video)} frames, {len(lm)} landmark rows, "
                             f"{len(pose)} pose rows for a clip of {row.n_frames} frames; re-run the preprocessing "
                             "stages")
        frames.append(video[:n])
        landmarks.append(lm[:n])
        poses.append(pose[:n].astype(np.float32))
        clip_ids.append(np.full(n, c, np.int32))
    lengths = [len(f) for f in frames]
    return FrameBank(table, np.concatenate(frames), np.concatenate(landmarks), np.concatenate(poses),
                     np.concatenate(clip_ids), np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))


def groundtruth_head_pose(bank: FrameBank, frames_table: Path | str) -> FrameBank:
    """The bank with (yaw, pitch, roll) replaced by the synthetic data's exact pose (``groundtruth/frames.parquet``).

    OSFV supervises the head-pose estimator with a pretrained HopeNet's estimates; on the embedded data the
    renderer's own sidecars give the exact angles instead, a labelled substitute for HopeNet. Normalised frame
    i (time i / fps) takes the raw frame nearest in time, as the preprocessing evaluation does. Every clip of
    the bank must have ground truth (training clips of the synthetic datasets).
    """
    frames_table = Path(frames_table)
    if not frames_table.is_file():
        raise FileNotFoundError(f"{frames_table}: no ground-truth head pose; latent_train.headpose_labels: "
                                "groundtruth works only on the embedded synthetic data (use 'estimated')")
    gt = pd.read_parquet(frames_table, columns=["clip_id", "frame", "yaw", "pitch", "roll"])
    clips_path = frames_table.with_name("clips.parquet")
    gt_fps = pd.read_parquet(clips_path, columns=["clip_id", "fps"]).set_index("clip_id").fps
    by_clip = {k: g.sort_values("frame")[["yaw", "pitch", "roll"]].to_numpy(np.float32)
               for k, g in gt.groupby("clip_id")}
    pose = bank.pose.copy()
    for c, row in enumerate(bank.clips.itertuples(index=False)):
        if row.clip_id not in by_clip:
            raise ValueError(f"{frames_table}: no ground truth for clip {row.clip_id}")
        angles, idx = by_clip[row.clip_id], bank.clip_frames(c)
        src = np.clip(np.round(np.arange(len(idx)) / row.fps * gt_fps[row.clip_id]).astype(int), 0, len(angles) - 1)
        pose[idx, :3] = angles[src]
    return FrameBank(bank.clips, bank.frames, bank.landmarks, pose, bank.clip, bank.start)


def neutral_partners(clips: pd.DataFrame) -> np.ndarray:
    """(C,) index of the neutral clip of the same dataset, identity and sentence, or −1 (none, or neutral itself)."""
    neutral = {(r.dataset, r.identity, r.sentence): i for i, r in enumerate(clips.itertuples(index=False))
               if r.emotion == "neutral"}
    return np.array([-1 if r.emotion == "neutral" else neutral.get((r.dataset, r.identity, r.sentence), -1)
                     for r in clips.itertuples(index=False)], np.int64)


@dataclass(frozen=True)
class PairSampler:
    """Draws (source, driving) frame indices of the bank; ``mode`` is ``osfv`` or ``enhanced`` (module docstring)."""

    bank: FrameBank
    mode: str
    seed: int

    def __post_init__(self) -> None:
        if self.mode not in ("osfv", "enhanced"):
            raise ValueError(f"unknown latent training mode {self.mode!r} (osfv | enhanced)")
        object.__setattr__(self, "partner", neutral_partners(self.bank.clips))

    def pairs(self, step: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(source, driving) frame indices of global batch ``step``, each (batch_size,)."""
        rng = np.random.default_rng([self.seed, step])
        driving = rng.integers(0, len(self.bank.frames), batch_size)
        source = np.empty_like(driving)
        for b, d in enumerate(driving):
            c = int(self.bank.clip[d])
            partner = int(self.partner[c]) if self.mode == "enhanced" else -1
            pool = c if partner < 0 else partner
            source[b] = rng.integers(self.bank.start[pool], self.bank.start[pool + 1])
        return source, driving


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 → (B, 3, S, S) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)


@dataclass
class Batch:
    """One training batch: images (B, 3, S, S) in [0, 1], driving landmarks (B, 68, 2) px, driving pose (B, 3) deg."""

    source: torch.Tensor
    driving: torch.Tensor
    driving_landmarks: np.ndarray
    driving_pose: torch.Tensor


def make_batch(bank: FrameBank, source: np.ndarray, driving: np.ndarray,
               device: torch.device | str = "cpu") -> Batch:
    return Batch(to_tensor(bank.frames[source]).to(device), to_tensor(bank.frames[driving]).to(device),
                 bank.landmarks[driving], torch.from_numpy(bank.pose[driving, :3]).to(device))


@dataclass(frozen=True)
class ColourAugmentation:
    """A strong random colour transform, the same on every image it is given (a source and its driving frame).

    A random permutation of the RGB channels, then per channel a gain in [1 − 0.4·s, 1 + 0.4·s] and an offset
    in [−0.2·s, 0.2·s] (s = ``strength``; 0 = off). Few training identities leave a renderer memorising
    their palettes; recoloured pairs force it to carry the source's colours to the output instead (the plain
    autoencoder reference of :mod:`eat.latent.probe`: held-out PSNR 22 → 28 dB on four identities). The
    transform is the same on source and driving, so what the model must learn (motion) is unchanged.
    """

    strength: float

    def __call__(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] → the same images recoloured with one draw of ``rng``."""
        if self.strength <= 0:
            return images
        order = rng.permutation(3)
        gain = 1 + 0.4 * self.strength * rng.uniform(-1, 1, 3)
        offset = 0.2 * self.strength * rng.uniform(-1, 1, 3)
        gain_t = torch.as_tensor(gain, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        offset_t = torch.as_tensor(offset, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images[:, order] * gain_t + offset_t).clamp(0, 1)


@dataclass(frozen=True)
class Augmentation:
    """OSFV's training augmentation, applied identically to the source and driving frame of a pair.

    A horizontal flip with probability ``flip`` (mirrored landmarks; yaw and roll change sign,
    pitch does not) and a colour jitter of brightness, contrast, saturation (factors drawn from
    [1 − j, 1 + j]) and hue (shift in [−j, j] turns). OSFV's values are 0.5 and 0.1 each; on a few
    training identities the colour jitter is what lets the generator render unseen skin tones and
    backgrounds instead of memorising the training ones.

    ``driving_roll`` (degrees, 0 = off, not OSFV's) then turns the driving frame alone about the frame centre by a
    random angle in ±``driving_roll`` (its landmarks with it, its roll label by the same angle): a camera roll
    between the two frames. The embedded clips' heads turn by a few degrees, about a pixel at 64², so an identity
    warp of the source already explains almost all of a pair, the estimator's pose stays at a constant and the
    dense motion's mask settles on the identity flow. A roll the keypoints must carry was meant to make the motion
    path work; at ±15° over 1,000 steps it did not (docs/probes/latent/README.md, nineteenth session).
    """

    flip: float
    brightness: float
    contrast: float
    saturation: float
    hue: float
    colour: ColourAugmentation = ColourAugmentation(0.0)
    driving_roll: float = 0.0

    @classmethod
    def from_config(cls, cfg) -> Augmentation:
        """From :class:`eat.config.LatentTrainConfig` (``flip_probability``, ``color_jitter``,
        ``colour_strength``, ``driving_roll``)."""
        return cls(cfg.flip_probability, *cfg.color_jitter, ColourAugmentation(cfg.colour_strength),
                   cfg.driving_roll)

    def __call__(self, batch: Batch, rngs: list[np.random.Generator]) -> Batch:
        """Augment each pair ``b`` with its own generator ``rngs[b]`` (so the draw does not depend on sharding)."""
        # local: torchvision's transforms add about a second to importing this module (extract_latent, …) and
        # only training's augmentation needs them
        from torchvision.transforms.v2 import functional as tf

        source, driving = batch.source.clone(), batch.driving.clone()
        landmarks, pose = batch.driving_landmarks.copy(), batch.driving_pose.clone()
        size = source.shape[-1]
        for b, rng in enumerate(rngs):
            pair = torch.stack([source[b], driving[b]])
            if rng.random() < self.flip:
                pair = pair.flip(-1)
                landmarks[b, :, 0] = size - 1 - landmarks[b, :, 0]
                pose[b, 0], pose[b, 2] = -pose[b, 0], -pose[b, 2]
            factors = rng.uniform(-1, 1, 4) * [self.brightness, self.contrast, self.saturation, self.hue]
            pair = tf.adjust_brightness(pair, 1 + factors[0])
            pair = tf.adjust_contrast(pair, 1 + factors[1])
            pair = tf.adjust_saturation(pair, 1 + factors[2])
            pair = self.colour(tf.adjust_hue(pair, factors[3]).clamp(0, 1), rng)
            source[b], driving[b] = pair[0], pair[1]
            if self.driving_roll > 0:
                angle = float(rng.uniform(-self.driving_roll, self.driving_roll))
                driving[b], landmarks[b] = rotate_frame(driving[b], landmarks[b], angle)
                pose[b, 2] += angle
        return Batch(source, driving, landmarks, pose)


def rotate_frame(image: torch.Tensor, landmarks: np.ndarray, degrees: float) -> tuple[torch.Tensor, np.ndarray]:
    """(3, S, S) image and (68, 2) pixel landmarks turned by ``degrees`` about the frame centre, clockwise on
    screen (image y points down), so the eye line's angle and the head's roll both grow by ``degrees``; the
    uncovered corners repeat the border pixels."""
    size = image.shape[-1]
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    theta = torch.tensor([[c, s, 0.0], [-s, c, 0.0]], dtype=image.dtype)[None]      # output → input coordinates
    grid = torch.nn.functional.affine_grid(theta, [1, *image.shape], align_corners=False)
    turned = torch.nn.functional.grid_sample(image[None], grid, padding_mode="border", align_corners=False)[0]
    centre = (size - 1) / 2
    moved = (landmarks - centre) @ np.array([[c, s], [-s, c]], np.float32) + centre
    return turned, moved.astype(landmarks.dtype)
