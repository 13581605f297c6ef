"""Read a normalised clip's audio and decide whether it is usable (else: why not, for the quarantine).

Input contract (written by the ``normalise`` stage, see :mod:`eat.schema`):
``data/interim/normalised.parquet`` with at least the columns in :data:`REQUIRED_COLUMNS`;
``audio_norm`` is a mono PCM16 wav at ``signal.audio_rate`` with exactly
``n_frames · signal.hop_length`` samples.

A clip is rejected (:class:`AudioRejected`, whose message is the quarantine reason) when its
file is missing, has the wrong rate or channel count, the wrong length, is silent (RMS below
``audio_features.silence_dbfs``) or clipped (more than ``audio_features.max_clipped_fraction``
of its samples at full scale, ±32767/−32768).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from eat.config import SignalConfig
from eat.features.config import AudioFeaturesConfig

REQUIRED_COLUMNS = ("uid", "clip_id", "dataset", "split", "text", "n_frames", "audio_norm")


class AudioRejected(ValueError):
    """A clip's audio cannot be used; the message is the reason recorded in the quarantine table."""


def read_normalised(path: Path | str) -> pd.DataFrame:
    """The normalised clip table, checked for the columns the audio stages need."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: normalised clip table not found; run `dvc repro normalise` first")
    table = pd.read_parquet(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing} (expected the normalise stage's layout, eat/schema.py)")
    return table


def read_clip_audio(path: Path | str, n_frames: int, signal: SignalConfig, checks: AudioFeaturesConfig) -> np.ndarray:
    """(n_frames · hop,) float32 samples in [-1, 1); raises :class:`AudioRejected` with the reason."""
    path = Path(path)
    if not path.is_file():
        raise AudioRejected(f"audio file missing: {path} (re-run the normalise stage)")
    info = sf.info(str(path))
    if info.samplerate != signal.audio_rate or info.channels != 1:
        raise AudioRejected(f"{info.channels} channel(s) at {info.samplerate} Hz, expected mono at "
                            f"{signal.audio_rate} Hz (re-run the normalise stage)")
    pcm = sf.read(str(path), dtype="int16")[0]
    expected = n_frames * signal.hop_length
    if len(pcm) != expected:
        raise AudioRejected(f"wrong length: {len(pcm)} samples, expected n_frames × hop = {n_frames} × "
                            f"{signal.hop_length} = {expected}")
    if expected == 0:
        raise AudioRejected("empty clip: n_frames is 0")
    samples = pcm.astype(np.float32) / 32768.0
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    rms_dbfs = 20.0 * np.log10(rms) if rms > 0 else -np.inf
    if rms_dbfs < checks.silence_dbfs:
        raise AudioRejected(f"silent audio: RMS {rms_dbfs:.1f} dBFS is below audio_features.silence_dbfs "
                            f"= {checks.silence_dbfs:g} dBFS")
    clipped = float(np.mean(np.abs(pcm.astype(np.int32)) >= 32767))
    if clipped > checks.max_clipped_fraction:
        raise AudioRejected(f"clipped audio: {100 * clipped:.2f} % of samples at full scale, more than "
                            f"audio_features.max_clipped_fraction = {100 * checks.max_clipped_fraction:g} %")
    return samples
