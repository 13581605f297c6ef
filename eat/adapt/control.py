"""Emotion control beyond one-hot labels (Fig. 12 and the intensity check), stage ``emotion_control``.

- Interpolation strip: one held-out clip generated with codes α · codes(B) + (1 − α) · codes(A) for α from 0
  to 1 (same latent code z), a few frames per α, written as one PNG (rows: α, columns: frames).
- Intensity: every non-neutral emotion at intensities 0 … 1 (a mix with neutral) on a few held-out clips; the
  classifier's mean probability of the target emotion per intensity, and whether it rises monotonically.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from scipy.stats import spearmanr

from eat.a2et.data import A2ETClip
from eat.adapt.generate import emotion_codes, emotional_video, intensity_mix, latent_code
from eat.adapt.model import EmotionalModel
from eat.config import EMOTIONS
from eat.emotion.predict import video_probabilities
from eat.io.atomic import atomic_path


def first_frames(clip: A2ETClip, n: int) -> A2ETClip:
    """The clip cut to its first ``n`` frames (every per-frame array), for cheap previews."""
    per_frame = ("mel", "speech", "pose", "pose_image", "pe", "keypoints", "rotation", "translation", "frames",
                 "landmarks")
    return replace(clip, **{f: getattr(clip, f)[:n] for f in per_frame if getattr(clip, f) is not None})


def interpolation_strip(model: EmotionalModel, clip: A2ETClip, start: str, end: str, steps: int, frames: int,
                        seed: int, half: int, scale: int = 2) -> np.ndarray:
    """(rows · S·scale, frames · S·scale, 3) uint8 grid: row r is α = r / (steps − 1) from ``start`` to ``end``."""
    z = latent_code(model, seed)
    picks = np.linspace(0, clip.n_frames - 1, frames).round().astype(int)
    rows = []
    for alpha in np.linspace(0, 1, steps):
        video = emotional_video(model, clip, emotion_codes(model, {start: 1 - alpha, end: alpha}, z), half)
        rows.append(np.concatenate(list(video[picks]), axis=1))
    grid = np.concatenate(rows, axis=0)
    return cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


MIN_RISE = 0.01
"""Probability gain from intensity 0 to 1 below which an emotion does not count as controlled: an untrained
renderer moves the classifier's output by ~1e-6, which a bare "non-decreasing" test would call monotonic."""
STEP_TOLERANCE = 1e-3
"""A dip between neighbouring intensities smaller than this is classifier noise, not a fall."""


def rises_with_intensity(probability: list[float]) -> bool:
    """Whether the target emotion's probability rises with intensity: no step falls by more than
    :data:`STEP_TOLERANCE` and the whole range gains at least :data:`MIN_RISE`."""
    p = np.asarray(probability, np.float64)
    return bool(np.all(np.diff(p) >= -STEP_TOLERANCE) and p[-1] - p[0] >= MIN_RISE)


def intensity_response(model: EmotionalModel, clips: list[A2ETClip], classifier, intensities: np.ndarray,
                       seed: int, half: int) -> dict[str, dict]:
    """Per non-neutral emotion: the classifier's mean probability of it at each intensity, its gain from the
    first to the last intensity, Spearman's rho, and :func:`rises_with_intensity`."""
    z = latent_code(model, seed)
    out = {}
    for emotion in (e for e in EMOTIONS if e != "neutral"):
        index = EMOTIONS.index(emotion)
        means = []
        for intensity in intensities:
            codes = emotion_codes(model, intensity_mix(emotion, float(intensity)), z)
            videos = [emotional_video(model, clip, codes, half) for clip in clips]
            means.append(float(video_probabilities(classifier, videos)[:, index].mean()))
        rho = spearmanr(intensities, means).statistic if np.ptp(means) > 0 else 0.0
        out[emotion] = {"probability": [round(m, 4) for m in means], "spearman": round(float(rho), 4),
                        "rise": round(means[-1] - means[0], 4), "monotonic": rises_with_intensity(means)}
    return out


def save_png(image: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"{path}: PNG encoding failed")
        Path(tmp).write_bytes(data.tobytes())
