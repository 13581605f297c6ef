"""Natural head motion and eye blinks for synthetic clips.

Head pose is a sum of a few slow sinusoids per degree of freedom (random
frequencies 0.08–0.7 Hz and phases), plus speech-driven nods (pitch follows
the smoothed loudness envelope) and an emotion-dependent posture bias
(sadness lowers the head, surprise raises it). Blinks are a Poisson process.
"""

from __future__ import annotations

import numpy as np

# (yaw, pitch, roll) bias in degrees and tz in mm at level 3; positive pitch = looking up.
EMOTION_POSTURE: dict[str, tuple[float, float, float, float]] = {
    "angry": (0.0, -3.0, 0.0, 8.0),
    "contempt": (-3.0, 2.5, -3.0, -5.0),
    "disgusted": (2.0, 1.0, 2.0, -8.0),
    "fear": (0.0, -2.0, 0.0, -12.0),
    "happy": (0.0, 2.0, 3.0, 0.0),
    "neutral": (0.0, 0.0, 0.0, 0.0),
    "sad": (0.0, -6.0, -2.0, -4.0),
    "surprised": (0.0, 5.0, 0.0, -8.0),
}
# Peak amplitudes of the wandering motion: yaw, pitch, roll [deg], tx, ty, tz [mm].
AMPLITUDE = np.array([9.0, 5.0, 3.5, 10.0, 6.0, 10.0])


def head_pose_track(rng: np.random.Generator, n_frames: int, fps: float, emotion: str, level_scale: float,
                    loudness: np.ndarray | None = None, motion_scale: float = 1.0) -> np.ndarray:
    """(n_frames, 6) pose: yaw, pitch, roll in degrees and tx, ty, tz in millimetres.

    ``loudness`` (n_frames,) in [0, 1] adds nods while speaking.
    """
    t = np.arange(n_frames) / fps
    pose = np.zeros((n_frames, 6))
    for dof in range(6):
        for _ in range(3):
            freq = rng.uniform(0.08, 0.7)
            amp = AMPLITUDE[dof] * rng.uniform(0.15, 0.45)
            pose[:, dof] += amp * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    pose *= motion_scale
    if loudness is not None:
        pose[:, 1] += 2.5 * motion_scale * (loudness - loudness.mean())
    bias = EMOTION_POSTURE[emotion]
    pose[:, 0:3] += np.array(bias[:3]) * level_scale
    pose[:, 5] += bias[3] * level_scale
    return pose


def blink_track(rng: np.random.Generator, n_frames: int, fps: float, rate_hz: float = 0.3,
                duration_s: float = 0.22) -> np.ndarray:
    """(n_frames,) eyelid closure in [0, 1]: triangular blinks at Poisson times."""
    t = np.arange(n_frames) / fps
    closure = np.zeros(n_frames)
    end = n_frames / fps
    onset = rng.exponential(1 / rate_hz) * 0.6
    while onset < end:
        phase = (t - onset) / duration_s
        closure = np.maximum(closure, np.clip(1 - np.abs(2 * phase - 1), 0, 1) * (phase >= 0) * (phase <= 1))
        onset += duration_s + rng.exponential(1 / rate_hz)
    return closure


def loudness_envelope(samples: np.ndarray, rate: int, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames,) RMS per video frame, normalised to [0, 1] and smoothed over ~0.2 s."""
    hop = rate / fps
    rms = np.array([np.sqrt(np.mean(samples[int(i * hop):int((i + 1) * hop)] ** 2) + 1e-12)
                    for i in range(n_frames)])
    rms = rms / (rms.max() + 1e-9)
    width = max(1, int(round(0.2 * fps)))
    return np.convolve(rms, np.ones(width) / width, mode="same")
