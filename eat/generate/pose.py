"""Head pose of a generated clip, per frame: (T, 6) yaw, pitch, roll [deg], tx, ty, tz in the latent model's space.

A2ET reads the pose (its pose token and the drawn head box, :mod:`eat.a2et.pose_image`) and the driving
keypoints are K_i = R_i K_c + T_i + E_i (Eq. 1), so the pose is chosen before the expression:

* ``static``: the photo's own pose (the head-pose estimator on the aligned source) held still;
* ``natural``: the photo's pose plus a gentle, seeded, smooth motion (:func:`natural_motion`): per angle a sum
  of three sinusoids of 0.05–0.35 Hz with random phases, RMS ≈ 3° yaw, 2° pitch, 1.5° roll, and a small sway of
  the translation (0.01 of the image half-width) — the slow drift of a person talking, not nods on syllables;
* a driving video: every frame's pose by the latent model's head-pose estimator on the video cropped by the
  training rule (first-frame box), resampled to 25 fps by time; a video shorter than the audio is played
  forwards then backwards (no jump), a one-frame video (or a still image) holds its pose, each with a warning
  that says so; a longer one is cut. The video is read upright (its display matrix applied, the ``rotate=90``
  of phone videos: :func:`eat.io.media.open_video`) and streamed: only the frames the audio reaches are
  decoded, and memory does not grow with the video's length.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from eat.config import Params
from eat.generate.face import detect_faces, face_landmarks
from eat.io.media import MediaError, open_video
from eat.latent.data import to_tensor
from eat.models.latent import LatentNetworks
from eat.preprocess.crop_geometry import crop, crop_box

log = logging.getLogger(__name__)

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


def ping_pong(index: np.ndarray, n_video: int) -> np.ndarray:
    """Frame indices of an endless video → frames of an ``n_video``-frame one played forwards then backwards."""
    period = max(1, 2 * n_video - 2)
    index = index % period
    return np.where(index < n_video, index, period - index)


def video_pose(video: Path | str, nets: LatentNetworks, params: Params, n_frames: int) -> np.ndarray:
    """(n_frames, 6) head pose of a driving video (module docstring)."""
    video = Path(video)
    if n_frames < 1:
        raise ValueError(f"video_pose: n_frames = {n_frames}; the audio has no frames")
    if not video.is_file():
        raise PoseError(f"{video}: driving video not found (--pose takes static, natural or a video file)")
    try:
        stream = open_video(video)
    except MediaError as err:
        raise PoseError(f"{video}: cannot read the driving video: {str(err).removeprefix(f'{video}: ')}") from None
    fps = stream.fps or params.signal.fps
    wanted = np.round(np.arange(n_frames) / params.signal.fps * fps).astype(np.int64)  # frames of an endless video
    size = params.signal.image_size
    poses: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    box = None
    try:
        for frame in stream.frames(limit=int(wanted.max()) + 1):
            if box is None:
                boxes = detect_faces(frame)
                landmarks = next((lm for lm in (face_landmarks(frame, b) for b in boxes) if lm is not None), None)
                if landmarks is None:
                    raise PoseError(f"{video}: no face in the first frame of the driving video")
                box = crop_box(landmarks, params.crop_align.scale)
            batch.append(cv2.resize(crop(frame, box, params.crop_align.size), (size, size),
                                    interpolation=cv2.INTER_AREA))
            if len(batch) == BATCH:
                poses.extend(image_pose(nets, np.stack(batch)))
                batch = []
    except MediaError as err:
        raise PoseError(f"{video}: cannot decode the driving video: {str(err).removeprefix(f'{video}: ')}") from None
    if batch:
        poses.extend(image_pose(nets, np.stack(batch)))
    n_video = len(poses)
    if n_video == 0:
        raise PoseError(f"{video}: the driving video has no frames")
    seconds = n_frames / params.signal.fps
    if n_video == 1 and n_frames > 1:
        log.warning("%s: the driving video has one frame; its head pose is held still for all %d frames (%.2f s) "
                    "of the audio", video, n_frames, seconds)
    elif n_video <= int(wanted.max()):
        log.warning("%s: the driving video (%d frames, %.2f s) is shorter than the audio (%.2f s); its head pose is "
                    "played forwards, then backwards, and so on to fill it", video, n_video, n_video / fps, seconds)
    return np.stack([poses[int(i)] for i in ping_pong(wanted, n_video)]).astype(np.float32)
