"""Head pose of a generated clip, per frame: (T, 6) yaw, pitch, roll [deg], tx, ty, tz in the latent model's space.

A2ET reads the pose (its pose token and the drawn head box, :mod:`eat.a2et.pose_image`) and the driving
keypoints are K_i = R_i K_c + T_i + E_i (Eq. 1), so the pose is chosen before the expression:

* ``static``: the photo's own pose (the head-pose estimator on the aligned source) held still;
* ``natural``: the photo's pose plus a gentle, seeded, smooth motion (:func:`natural_motion`): per angle a sum
  of three sinusoids of 0.05–0.35 Hz with random phases, RMS ≈ 3° yaw, 2° pitch, 1.5° roll, and a small sway of
  the translation (0.01 of the image half-width) — the slow drift of a person talking, not nods on syllables;
* a driving video: every frame's pose by the latent model's head-pose estimator on the video cropped by the
  training rule (first-frame box), resampled to 25 fps by time; a video shorter than the audio is played
  forwards then backwards (no jump), a longer one is cut.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from eat.config import Params
from eat.latent.data import to_tensor
from eat.models.latent import LatentNetworks

NATURAL_RMS_DEG = np.array([3.0, 2.0, 1.5], np.float32)   # yaw, pitch, roll
NATURAL_SWAY = 0.01                                        # translation, in the latent model's [-1, 1] units
NATURAL_FREQS_HZ = (0.05, 0.35)
BATCH = 32


class PoseError(ValueError):
    """The driving video cannot give a head pose; the message names the file."""


@torch.no_grad()
def image_pose(nets: LatentNetworks, frames: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 aligned frames → (N, 6) pose from the head-pose estimator."""
    out = []
    for start in range(0, len(frames), BATCH):
        pose = nets.he_estimator(to_tensor(frames[start:start + BATCH]).to(next(nets.parameters()).device))
        out.append(torch.cat([torch.stack(pose.degrees(), -1), pose.translation], -1).float().cpu().numpy())
    return np.concatenate(out)


def natural_motion(start: int, stop: int, fps: float, seed: int) -> np.ndarray:
    """(stop − start, 6) offsets of frames [start, stop) of the seeded motion (module docstring); any chunking
    of a clip gives the same frames."""
    rng = np.random.default_rng(seed)
    t = np.arange(start, stop, dtype=np.float64)[:, None] / fps                     # (n, 1) seconds
    freqs = rng.uniform(*NATURAL_FREQS_HZ, size=(6, 3))
    phases = rng.uniform(0, 2 * np.pi, size=(6, 3))
    waves = np.sin(2 * np.pi * freqs[None] * t[:, :, None] + phases[None]).sum(-1)  # (n, 6), RMS √1.5
    scale = np.concatenate([NATURAL_RMS_DEG, [NATURAL_SWAY] * 3]) / np.sqrt(1.5)
    return (waves * scale).astype(np.float32)


def video_pose(video: Path | str, nets: LatentNetworks, params: Params, n_frames: int) -> np.ndarray:
    """(n_frames, 6) head pose of a driving video (module docstring)."""
    import decord

    from eat.generate.face import detect_faces, face_landmarks
    from eat.preprocess.crop_align import crop, crop_box

    video = Path(video)
    if not video.is_file():
        raise PoseError(f"{video}: driving video not found (--pose takes static, natural or a video file)")
    try:
        reader = decord.VideoReader(str(video), ctx=decord.cpu(0), num_threads=1)
    except Exception as err:  # noqa: BLE001 — decord raises its own error types
        raise PoseError(f"{video}: cannot decode the driving video: {err}") from None
    if len(reader) == 0:
        raise PoseError(f"{video}: the driving video has no frames")
    first = reader[0].asnumpy()
    boxes = detect_faces(first)
    landmarks = face_landmarks(first, boxes[0]) if boxes else None
    if landmarks is None:
        raise PoseError(f"{video}: no face in the first frame of the driving video")
    box = crop_box(landmarks, params.crop_align.scale)
    size = params.signal.image_size

    def aligned(i: int) -> np.ndarray:
        return cv2.resize(crop(reader[i].asnumpy(), box, params.crop_align.size), (size, size),
                          interpolation=cv2.INTER_AREA)

    fps = reader.get_avg_fps() or params.signal.fps
    times = np.arange(n_frames) / params.signal.fps
    n_video = len(reader)
    index = np.minimum(np.round(times * fps).astype(int), 10 ** 9)
    period = max(1, 2 * n_video - 2)
    index = np.where(index % period < n_video, index % period, period - index % period)   # ping-pong
    unique = np.unique(index)
    poses: dict[int, np.ndarray] = {}
    for start in range(0, len(unique), BATCH):
        part = unique[start:start + BATCH]
        for i, p in zip(part, image_pose(nets, np.stack([aligned(int(i)) for i in part])), strict=True):
            poses[int(i)] = p
    return np.stack([poses[int(i)] for i in index]).astype(np.float32)
