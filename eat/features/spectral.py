"""Frame-aligned spectral features: the paper's log-mel (one frame per video frame) and MFCCs.

Framing (the one convention every audio feature here follows). A clip of ``T`` video frames has
exactly ``T · hop`` samples (``hop = audio_rate / fps``, 640 at 16 kHz / 25 fps; the normalise
stage guarantees the length). Analysis frame ``j`` of hop ``h`` and window ``w`` is *centred on
its own hop*: it covers samples ``[h·j + h/2 − w/2, h·j + h/2 + w/2)``, zeros outside the clip,
so a clip always gives exactly ``len(samples) / h`` frames and frame ``j`` is centred on the
audio of step ``j``. For the paper's mel (docs/paper_notes.md §1: 80 mels, n_fft 2048, window = hop =
640) the frames do not overlap: mel frame ``i`` is the audio of video frame ``i``, samples
``[640 i, 640 (i + 1))``, Hann-windowed and zero-padded to 2048 points; ``T`` mel frames for
``T`` video frames. (The official EAT code uses torchaudio's ``center=True`` STFT, whose frame
``i`` is centred on the *start* of video frame ``i``, half a frame earlier, and has ``T + 1``
frames; we centre on the frame itself.)

Values. ``log_mel``: ``ln(1e-5 + M)`` of the power mel spectrogram ``M`` (|STFT|², HTK mel scale,
unnormalised triangles, 0 to audio_rate/2: torchaudio's ``MelSpectrogram`` defaults, as the
official code computes it; the official model then feeds ``(log_mel + 4) / 4`` to the audio
encoder, which is the consumer's business). ``mfcc``: DCT-II (orthonormal) of ``10 log10(M)``
(floored at 1e-10), first ``n_mfcc`` coefficients: librosa's MFCC on the same mel spectrogram
without its per-clip ``top_db`` clipping, so every frame depends on its own audio only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

LOG_MEL_FLOOR = 1e-5
_DB_FLOOR = 1e-10


def centred_frames(samples: np.ndarray, hop: int, win: int) -> np.ndarray:
    """(S, win) frames of (S·hop,) samples; frame ``j`` centred on samples ``[hop j, hop (j+1))``.

    Needs ``win >= hop`` and ``win - hop`` even (so the centring is exact). Returns a read-only view.
    """
    if len(samples) % hop:
        raise ValueError(f"{len(samples)} samples is not a whole number of {hop}-sample hops")
    if win < hop or (win - hop) % 2:
        raise ValueError(f"window {win} must be >= hop {hop} and differ from it by an even number of samples")
    n_steps, left = len(samples) // hop, (win - hop) // 2
    padded = np.zeros(hop * n_steps + win - hop, dtype=np.float32)
    padded[left:left + len(samples)] = samples
    return sliding_window_view(padded, win)[::hop]


@lru_cache(maxsize=8)
def _hann(win: int) -> np.ndarray:
    """Periodic Hann window (torch.hann_window / scipy ``get_window('hann', fftbins=True)``)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)).astype(np.float32)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@lru_cache(maxsize=8)
def mel_filterbank(rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangles on the HTK mel scale, peak 1, 0 Hz to rate / 2.

    Filter ``m`` rises linearly in Hz from centre ``m − 1`` to centre ``m`` and falls to centre
    ``m + 1``, the ``n_mels + 2`` centres equally spaced in mel (torchaudio's defaults; librosa's
    ``filters.mel(htk=True, norm=None)`` gives the same matrix).
    """
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(rate / 2), n_mels + 2))
    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    rising = (bins[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    falling = (edges[2:, None] - bins[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def power_spectrogram(samples: np.ndarray, hop: int, win: int, n_fft: int) -> np.ndarray:
    """(S, n_fft // 2 + 1) float32 |STFT|² on :func:`centred_frames`, Hann window zero-padded to n_fft.

    Where the window sits inside the n_fft buffer changes only the phase, not the power.
    """
    if n_fft < win:
        raise ValueError(f"n_fft {n_fft} is shorter than the window {win}")
    spectrum = scipy.fft.rfft(centred_frames(samples, hop, win) * _hann(win), n=n_fft, axis=-1)
    return (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32)


def mel_power(samples: np.ndarray, rate: int, hop: int, win: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(S, n_mels) float32 power mel spectrogram, one frame per ``hop`` samples."""
    return power_spectrogram(samples, hop, win, n_fft) @ mel_filterbank(rate, n_fft, n_mels).T


def log_mel(mel: np.ndarray) -> np.ndarray:
    """``ln(1e-5 + M)``, float32, same shape as the power mel ``M``."""
    return np.log(LOG_MEL_FLOOR + mel).astype(np.float32)


def mfcc(mel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """(S, n_mfcc) float32: orthonormal DCT-II over mel bins of ``10 log10(max(M, 1e-10))``."""
    db = 10.0 * np.log10(np.maximum(mel, _DB_FLOOR))
    return scipy.fft.dct(db, type=2, norm="ortho", axis=-1)[:, :n_mfcc].astype(np.float32)
