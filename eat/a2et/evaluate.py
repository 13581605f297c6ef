"""Generate held-out clips with A2ET and score them against the baselines of the "Pretrain" rows (Table 1).

A clip is generated from its source frame (frame 0), its audio and its ground-truth head pose: A2ET
predicts PE_i for every frame in sliding windows (batched), E_i → K_i (Eq. 1), RePos-Net renders.
Scored beside it, every video as long as the clip:

- ``static``: the source frame repeated (no motion at all);
- ``pose_only``: rendered like the generated video but with the source frame's own expression E_0 held
  for every frame, so only the head pose moves: what the renderer gives without A2ET;
- ``ground_truth`` (sync only: the reference confidence).

Metrics: PSNR and SSIM of whole frames; mouth / face landmark distance (iBUG 48–67 / all 68, mean-centred,
pixels at ``crop_align.size``) with one landmark detector on generated and ground-truth frames alike;
sync confidence (median − min of the distance curve, syncnet_python's way) with the lip-sync expert,
with the clip's own audio and with another held-out clip's audio (shuffled).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from eat.a2et.data import A2ETClip, window_batch
from eat.a2et.objective import ExpressionPath
from eat.io.media import mux, write_video
from eat.latent.data import to_tensor
from eat.models.a2et import A2ET
from eat.preprocess.landmarks import MediaPipeDetector

MOUTH = slice(48, 68)
VIDEOS = ("generated", "pose_only", "static")


@torch.no_grad()
def predict_clip(a2et: A2ET, clip: A2ETClip, half: int, batch_size: int) -> np.ndarray:
    """PÊ (T, n) for every frame of ``clip``, windows of 2·half + 1 frames, ``batch_size`` windows per pass."""
    a2et.eval()
    face = a2et.face_feature(torch.from_numpy(clip.source_logits[None]))
    out = []
    for start in range(0, clip.n_frames, batch_size):
        centres = np.arange(start, min(start + batch_size, clip.n_frames))
        b = window_batch([clip], np.zeros(len(centres), int), centres, half)
        out.append(a2et(b.speech, b.pose, b.pose_image, b.mel, face))
    return torch.cat(out).numpy()


@torch.no_grad()
def render_clip(generator: torch.nn.Module, path: ExpressionPath, clip: A2ETClip, pe: np.ndarray,
                batch_size: int = 64) -> np.ndarray:
    """(T, S, S, 3) uint8 frames rendered from the clip's source frame with K_i = R_i K_c + T_i + E(PE_i)."""
    source = to_tensor(clip.frames[:1])
    volume = generator.appearance(source)
    kp_source = torch.from_numpy(clip.keypoints[:1])
    canonical = torch.from_numpy(clip.canonical[None])
    frames = []
    for start in range(0, clip.n_frames, batch_size):
        i = slice(start, min(start + batch_size, clip.n_frames))
        n = i.stop - i.start
        kp = path.keypoints(torch.from_numpy(pe[i]), canonical.expand(n, -1, -1), torch.from_numpy(clip.rotation[i]),
                            torch.from_numpy(clip.translation[i]))
        out = generator.render(volume.expand(n, -1, -1, -1, -1), kp_source.expand(n, -1, -1), kp)["prediction"]
        frames.append((out.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(frames)


def image_scores(video: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM over frames; identical frames give PSNR inf, which is capped at 100 dB."""
    psnr = [min(peak_signal_noise_ratio(t, v, data_range=255), 100.0) for v, t in zip(video, truth, strict=True)]
    ssim = [structural_similarity(t, v, channel_axis=-1, data_range=255) for v, t in zip(video, truth, strict=True)]
    return {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim))}


def detect_landmarks(video: np.ndarray, size: int) -> np.ndarray:
    """(T, 68, 2) landmarks in pixels of ``size``² (NaN where no face), frames upscaled to ``size`` first."""
    detector = MediaPipeDetector(static=False)
    try:
        out = np.full((len(video), 68, 2), np.nan, np.float32)
        for t, frame in enumerate(video):
            found = detector(cv2.resize(frame, (size, size), interpolation=cv2.INTER_CUBIC)).landmarks
            if found is not None:
                out[t] = found
        return out
    finally:
        detector.close()


def landmark_distance(a: np.ndarray, b: np.ndarray) -> dict[str, float | None]:
    """Mouth and face landmark distance (mean-centred per frame, px) over frames where both have a face."""
    ok = ~(np.isnan(a).any(axis=(1, 2)) | np.isnan(b).any(axis=(1, 2)))
    if not ok.any():
        return {"m_lmd": None, "f_lmd": None, "frames_with_landmarks": 0.0}
    a, b = a[ok] - a[ok].mean(axis=1, keepdims=True), b[ok] - b[ok].mean(axis=1, keepdims=True)
    dist = np.linalg.norm(a - b, axis=-1)
    return {"m_lmd": float(dist[:, MOUTH].mean()), "f_lmd": float(dist.mean()),
            "frames_with_landmarks": float(ok.mean())}


def sync_scores(embed, uid: str, videos: dict[str, np.ndarray], mel: np.ndarray, other_mel: np.ndarray | None
                ) -> dict[str, float]:
    """Sync confidence of each video with its audio and (``<name>_shuffled``) with another clip's audio."""
    from eat.sync.offset import evaluate_offset
    from eat.sync.train import SyncClip, search_range

    out: dict[str, float] = {}
    for name, video in videos.items():
        v, a = embed(SyncClip(uid, "MEAD", video, mel))
        out[f"sync_conf_{name}"] = evaluate_offset(v, a, search_range(len(v))).confidence
        if other_mel is not None:
            n = min(len(video), len(other_mel))
            v, a = embed(SyncClip(uid, "MEAD", video[:n], other_mel[:n]))
            out[f"sync_conf_{name}_shuffled"] = evaluate_offset(v, a, search_range(len(v))).confidence
    return out


def evaluate_clips(a2et: A2ET, generator: torch.nn.Module, path: ExpressionPath, clips: Sequence[A2ETClip],
                   embed, half: int, batch_size: int, landmark_size: int) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Per-clip scores of the generated video and the baselines; also the generated frames per uid."""
    rows, generated = [], {}
    for c, clip in enumerate(clips):
        pe = predict_clip(a2et, clip, half, batch_size)
        videos = {"generated": render_clip(generator, path, clip, pe),
                  "pose_only": render_clip(generator, path, clip, np.repeat(clip.pe[:1], clip.n_frames, 0)),
                  "static": np.repeat(clip.frames[:1], clip.n_frames, 0)}
        generated[clip.uid] = videos["generated"]
        row = {"uid": clip.uid, "emotion": clip.emotion, "frames": clip.n_frames,
               "pe_mse": float(np.mean((pe - clip.pe) ** 2))}
        truth_lm = detect_landmarks(clip.frames, landmark_size)
        for name, video in videos.items():
            row.update({f"{k}_{name}": v for k, v in image_scores(video, clip.frames).items()})
            row.update({f"{k}_{name}": v for k, v in landmark_distance(detect_landmarks(video, landmark_size),
                                                                        truth_lm).items()})
        other = clips[(c + 1) % len(clips)].mel if len(clips) > 1 else None
        row.update(sync_scores(embed, clip.uid, {**videos, "ground_truth": clip.frames}, clip.mel, other))
        rows.append(row)
    return rows, generated


def summarise(rows: list[dict]) -> dict[str, float | None]:
    """Mean of every numeric column over clips (None where a column has no value)."""
    keys = [k for k in rows[0] if k not in ("uid", "emotion")]
    out = {}
    for k in keys:
        values = [r[k] for r in rows if r.get(k) is not None]
        out[k] = round(float(np.mean(values)), 4) if values else None
    return out


def side_by_side_video(truth: np.ndarray, generated: np.ndarray, audio: str, fps: float, out: Path,
                       scale: int = 2) -> None:
    """mp4 of ground truth | generated (upscaled ``scale``×) with the clip's audio."""
    frames = [cv2.resize(np.concatenate([t, g], axis=1), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
              for t, g in zip(truth, generated, strict=True)]
    h, w = frames[0].shape[:2]
    silent = out.with_suffix(".silent.mp4")
    write_video(silent, frames, fps, w, h)
    try:
        mux(silent, audio, out)
    finally:
        silent.unlink(missing_ok=True)
