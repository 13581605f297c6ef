"""The ``normalise`` stage: every clip to ``signal.fps`` video and ``signal.audio_rate`` mono audio, aligned.

Video is resampled to the target frame rate with ffmpeg's ``fps`` filter (which also
makes variable-frame-rate video constant) and re-encoded; audio is decoded, down-mixed
to mono and resampled by ffmpeg. Both are then cut to the same length T frames, the
audio to exactly ``T × audio_rate / fps`` samples (640 per frame at 25 fps / 16 kHz),
so mel frame i, speech window i and video frame i all describe the same 40 ms.
Silent or clipped audio is rejected with the measured value in the reason.
"""

from __future__ import annotations

from pathlib import Path

import decord
import numpy as np
import soundfile as sf

from eat.config import NormaliseConfig, SignalConfig
from eat.io.atomic import atomic_path
from eat.io.media import MediaError, read_audio, run_ffmpeg, x264_args


def samples_per_frame(signal: SignalConfig) -> int:
    value = signal.audio_rate / signal.fps
    if value != int(value):
        raise ValueError(f"signal.audio_rate / signal.fps = {value} is not a whole number of samples per frame")
    return int(value)


def check_audio(samples: np.ndarray, path: str, cfg: NormaliseConfig) -> None:
    """Raise :class:`MediaError` if the audio is silent or clipped (values in the message)."""
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0
    if rms < cfg.silence_rms:
        raise MediaError(f"{path}: audio is silent (RMS {rms:.5f} < normalise.silence_rms = {cfg.silence_rms})")
    clipped = float(np.mean(np.abs(samples) >= 0.999))
    if clipped > cfg.clipped_fraction:
        raise MediaError(f"{path}: audio is clipped ({100 * clipped:.2f} % of samples at full scale > "
                         f"normalise.clipped_fraction = {100 * cfg.clipped_fraction:.2f} %)")


def normalise_clip(row: dict, out_dir: Path, signal: SignalConfig, cfg: NormaliseConfig) -> dict:
    """Write ``<uid>.mp4`` and ``<uid>.wav``; returns the updated manifest fields."""
    hop = samples_per_frame(signal)
    samples, _ = read_audio(row["audio_path"], rate=signal.audio_rate)
    check_audio(samples, row["audio_path"], cfg)
    max_frames = len(samples) // hop
    video_out = out_dir / f"{row['uid']}.mp4"
    with atomic_path(video_out) as tmp:
        run_ffmpeg(["-i", row["video_path"], "-an", "-vf", f"fps={signal.fps:g}", "-frames:v", str(max_frames),
                    *x264_args(cfg.preset, cfg.crf, "yuv420p"),
                    "-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1",
                    "-f", "mp4", str(tmp)], video_out)
        n_frames = len(decord.VideoReader(str(tmp), ctx=decord.cpu(0)))
    if n_frames == 0:
        raise MediaError(f"{row['video_path']}: no frames left after resampling to {signal.fps:g} fps")
    audio_out = out_dir / f"{row['uid']}.wav"
    with atomic_path(audio_out) as tmp:
        sf.write(tmp, samples[: n_frames * hop], signal.audio_rate, subtype="PCM_16", format="WAV")
    return {"video_norm": str(video_out), "audio_norm": str(audio_out), "fps": signal.fps,
            "audio_rate": signal.audio_rate, "n_frames": n_frames, "duration_s": n_frames / signal.fps}


