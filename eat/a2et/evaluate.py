"""Generate held-out clips with A2ET and score them against the baselines of the "Pretrain" rows (Table 1).

A clip is generated from its source frame (frame 0), its audio and its ground-truth head pose: A2ET
predicts PE_i for every frame in sliding windows (batched), E_i → K_i (Eq. 1), RePos-Net renders
(:func:`eat.render_clip.generate_clip`, the one generation path).
The latent phase, which renders nothing in training, is scored on ``pe_mse`` alone
(:func:`pose_expression_errors`). Scored beside the full phase's generated video, every video as long as the clip:

- ``static``: the source frame repeated (no motion at all);
- ``pose_only``: rendered like the generated video but with the source frame's own expression E_0 held
  for every frame, so only the head pose moves: what the renderer gives without A2ET;
- ``ground_truth`` (sync only: the reference confidence).

Metrics (the paper's protocol, :mod:`metrics`): PSNR, SSIM, M-LMD and F-LMD on 128² aligned face crops, one
landmark detector for generated and ground-truth frames alike; sync confidence (median − min of the distance
curve, syncnet_python's way) with the lip-sync expert, with the clip's own audio and with another held-out
clip's audio (shuffled).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from eat.a2et.data import A2ETClip
from eat.io.media import mux, write_video
from eat.latent.pca import ExpressionBasis
from eat.models.a2et import A2ET
from eat.render_clip import a2et_predictor, generate_clip, held_expression, predict_keypoints
from eat.scoring import REFERENCE_FACE, detector_factory
from metrics.align import align_fresh
from metrics.sync import AVClip, sync_score
from metrics.table import image_metrics


def clip_scores(uid: str, videos: dict[str, np.ndarray], truth: np.ndarray, mel: np.ndarray,
                other_mel: np.ndarray | None, new_detector, embed) -> dict[str, float]:
    """The paper's metrics (metrics/: aligned 128² crops, PSNR, SSIM, M-/F-LMD; sync confidence) of each video
    against the ground truth, as ``<metric>_<video>``; sync also with another clip's audio (``…_shuffled``).

    The image metrics skip frame 0: it is the source frame, an input rather than an output, and the static
    video's copy of it would score an infinite PSNR (which made the static mean undefined)."""
    row: dict[str, float] = {}
    truth_aligned = align_fresh(truth[1:], new_detector, REFERENCE_FACE)      # once for the three videos
    for name, video in videos.items():
        if name != "ground_truth":
            scores = image_metrics(uid, video[1:], truth[1:], new_detector, REFERENCE_FACE, truth_aligned).row
            row.update({f"{k}_{name}": scores[k] for k in ("PSNR", "SSIM", "M-LMD", "F-LMD", "face_frames")})
        row[f"Sync_{name}"] = sync_score(AVClip(uid, video, mel=mel), embed).confidence
        if other_mel is not None:
            n = min(len(video), len(other_mel))
            row[f"Sync_{name}_shuffled"] = sync_score(AVClip(uid, video[:n], mel=other_mel[:n]), embed).confidence
    return row


def evaluate_clips(a2et: A2ET, generator: torch.nn.Module, basis: ExpressionBasis, clips: Sequence[A2ETClip],
                   embed, half: int, batch_size: int) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Per-clip scores of the generated video and the baselines; also the generated frames per uid."""
    new_detector = detector_factory("mediapipe")
    rows, generated = [], {}
    for c, clip in enumerate(clips):
        made = generate_clip(generator, a2et_predictor(a2et, basis, clip), clip, half, basis, batch_size=batch_size)
        pose_only = generate_clip(generator, held_expression(basis, clip.source.pe), clip, half, basis)
        videos = {"generated": made.frames, "pose_only": pose_only.frames,
                  "static": np.repeat(clip.source.frame[None], clip.n_frames, 0), "ground_truth": clip.frames}
        generated[clip.uid] = videos["generated"]
        other = clips[(c + 1) % len(clips)].mel if len(clips) > 1 else None
        rows.append({"uid": clip.uid, "emotion": clip.emotion, "frames": clip.n_frames,
                     "pe_mse": pe_mse(made.pe, clip),
                     **clip_scores(clip.uid, videos, clip.frames, clip.mel, other, new_detector, embed)})
    return rows, generated


@torch.no_grad()
def pose_expression_errors(a2et: A2ET, basis: ExpressionBasis, clips: Sequence[A2ETClip], half: int,
                           batch_size: int) -> list[dict]:
    """Per-clip MSE of the predicted PCA coefficients (``pe_mse``), nothing rendered: the held-out score of the
    latent phase, which trains no rendering loss (its renders cost 30 s and were the full phase's to judge)."""
    return [{"uid": clip.uid, "emotion": clip.emotion, "frames": clip.n_frames,
             "pe_mse": pe_mse(predict_keypoints(a2et_predictor(a2et, basis, clip), clip, half, batch_size)[0], clip)}
            for clip in clips]


def pe_mse(pe: torch.Tensor, clip: A2ETClip) -> float:
    """Mean squared error of predicted PCA coefficients (T, n) against the clip's own (``pe_mse``)."""
    return float(np.mean((pe.numpy() - clip.pe) ** 2))


def summarise(rows: list[dict]) -> dict[str, float | None]:
    """Mean of every numeric column over the clips where it is finite (None where it never is)."""
    out = {}
    for k in (k for k in rows[0] if k not in ("uid", "emotion")):
        values = [float(r[k]) for r in rows if r.get(k) is not None and np.isfinite(r[k])]
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
