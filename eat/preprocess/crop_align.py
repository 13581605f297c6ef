"""The ``crop_align`` stage: detect landmarks, choose the crop, write aligned S×S frames and landmarks.

Crop rule (the official EAT / face-vid2vid preprocessing, docs/paper_notes.md §1): from the 68
landmarks of the first frame, box centre x = the landmarks' horizontal middle,
centre y = (3·min_y + max_y) / 4 (a little above the landmarks' centre, to keep the
forehead), side = ``scale`` × face width (2.1) → one box for the whole clip, so the
head moves inside a fixed frame as in the training data. ``mode: smoothed`` instead
follows the head with per-frame boxes averaged over ``smooth_s`` seconds, for clips
where the head leaves a fixed box. Parts of the box outside the frame are filled by
edge replication.

Storage: aligned frames as H.264 4:4:4 mp4 at crf 12, visually lossless (measured on
the embedded data: PSNR 44 dB on average, 42 dB at worst, against the uint8 crops),
about 135× smaller than uint8 arrays and decoded by decord at ~1,250 frames/s on one
core; landmarks, boxes and the frames area-downscaled to the models' ``signal.image_size``
in a small .npz. The models train and are judged at that size: five stages read every clip's
frames there (the latent model twice, A2ET twice, Emotion-FAN, extract_latent, evaluate), and
decoding the mp4s took each of them 60-85 s on the 2-core machine where reading the npz takes
seconds; the mp4 keeps the full-resolution crop for the lip-sync expert's mouth and for viewing.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from eat.config import CropAlignConfig
from eat.io.arrays import write_npz
from eat.io.media import MediaError, write_video
from eat.io.video import read_frames
from eat.preprocess.crop_geometry import crop, crop_box
from eat.preprocess.head_pose import estimate_pose
from eat.preprocess.landmarks import make_detector


def smoothed_boxes(landmarks: np.ndarray, scale: float, window: int) -> np.ndarray:
    """(T, 68, 2) → (T, 3) per-frame boxes, moving average over ``window`` frames (edges padded)."""
    boxes = np.stack([crop_box(lm, scale) for lm in landmarks])
    if window <= 1:
        return boxes
    pad = window // 2
    padded = np.pad(boxes, ((pad, window - 1 - pad), (0, 0)), mode="edge")
    kernel = np.ones(window) / window
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(3)], axis=1).astype(np.float32)


def _fill_missing(landmarks: list[np.ndarray | None]) -> np.ndarray:
    """Linear interpolation over frames where no face was found (edges: nearest detection)."""
    found = np.array([lm is not None for lm in landmarks])
    idx = np.flatnonzero(found)
    stacked = np.zeros((len(landmarks), 68, 2), np.float32)
    stacked[idx] = np.stack([landmarks[i] for i in idx])
    for k in range(68 * 2):
        series = stacked.reshape(len(landmarks), -1)[:, k]
        series[~found] = np.interp(np.flatnonzero(~found), idx, series[idx])
    return stacked


def detect_track(frames: np.ndarray, cfg: CropAlignConfig, path: str) -> np.ndarray:
    """(T, H, W, 3) frames → (T, 68, 2) landmarks of the one face in the clip; raises :class:`MediaError` on no,
    several or profile faces."""
    detector = make_detector(cfg.backend, cfg.fan_weights)
    found: list[np.ndarray | None] = []
    try:
        for i in range(len(frames)):
            det = detector(frames[i])
            if det.n_faces > 1:
                raise MediaError(f"{path}: {det.n_faces} faces in frame {i}; a clip must show one speaker")
            found.append(det.landmarks)
    finally:
        detector.close()
    detected = sum(lm is not None for lm in found) / len(found)
    if detected < cfg.min_detected_fraction:
        raise MediaError(f"{path}: no face detected in {100 * (1 - detected):.0f} % of frames "
                         f"(crop_align.min_detected_fraction = {cfg.min_detected_fraction})")
    landmarks = _fill_missing(found)
    h, w = frames.shape[1:3]
    yaw = abs(estimate_pose(landmarks[:1], w, h)[0, 0])
    if yaw > cfg.max_abs_yaw:
        raise MediaError(f"{path}: profile view (yaw {yaw:.0f}° > crop_align.max_abs_yaw = {cfg.max_abs_yaw}°); "
                         f"the models need near-frontal faces")
    return landmarks


def crop_align_clip(row: dict, out_dir: Path, cfg: CropAlignConfig, image_size: int) -> dict:
    """Write ``<uid>.mp4`` (aligned frames) and ``<uid>.npz`` (landmarks, boxes, frames at ``image_size``²);
    returns new table fields."""
    frames = read_frames(row["video_norm"])   # decoded once for the landmarks and the crops
    landmarks = detect_track(frames, cfg, row["video_norm"])
    if cfg.mode == "first_frame":
        boxes = np.repeat(crop_box(landmarks[0], cfg.scale)[None], len(landmarks), axis=0)
    else:
        boxes = smoothed_boxes(landmarks, cfg.scale, max(1, int(round(cfg.smooth_s * row["fps"]))))
    small: list[np.ndarray] = []

    def aligned():
        for i in range(len(frames)):
            face = crop(frames[i], boxes[i], cfg.size)
            small.append(face if cfg.size == image_size else
                         cv2.resize(face, (image_size, image_size), interpolation=cv2.INTER_AREA))
            yield face

    video_out, arrays_out = out_dir / f"{row['uid']}.mp4", out_dir / f"{row['uid']}.npz"
    write_video(video_out, aligned(), row["fps"], cfg.size, cfg.size, cfg.crf, pix_fmt="yuv444p", preset="veryfast")
    crop_lm = (landmarks - boxes[:, None, :2]) * (cfg.size / boxes[:, None, 2:3])
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:3], boxes[:, 2:3]], axis=1)
    write_npz(arrays_out, {"landmarks": crop_lm.astype(np.float32), "box": xywh.astype(np.float32),
                           "frames": np.stack(small)})
    return {"aligned": str(video_out), "aligned_arrays": str(arrays_out)}
