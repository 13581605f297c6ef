"""Frame-aligned spectral features: the paper's log-mel (one frame per video frame) and MFCCs, computed with librosa.

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

Computation. librosa does the signal processing (``stft`` with a periodic Hann window of ``w``
points centred in ``n_fft``, ``filters.mel(htk=True, norm=None)``, ``power_to_db``,
``feature.mfcc``); its ``center=False`` frame ``j`` starts at sample ``h·j`` of its input, so we
zero-pad the clip by ``(n_fft − w) // 2 + (w − h) / 2`` on the left (and to ``S`` whole frames on
the right) to get the framing above. Nothing is JIT-compiled per call, but importing librosa's
``util`` and ``core.audio`` modules (which every function used here needs) builds their numba
kernels: the first call in a process takes about 3 s once numba's on-disk cache exists, 20 s or
more the very first time in an environment (numba then writes the cache next to librosa's sources).
"""

from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np

LOG_MEL_FLOOR = 1e-5
_DB_FLOOR = 1e-10


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return librosa.hz_to_mel(np.asarray(hz, dtype=np.float64), htk=True)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return librosa.mel_to_hz(np.asarray(mel, dtype=np.float64), htk=True)


@lru_cache(maxsize=8)
def mel_filterbank(rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangles on the HTK mel scale, peak 1, 0 Hz to rate / 2.

    Filter ``m`` rises linearly in Hz from centre ``m − 1`` to centre ``m`` and falls to centre
    ``m + 1``, the ``n_mels + 2`` centres equally spaced in mel (torchaudio's defaults).
    """
    return librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, htk=True, norm=None, dtype=np.float32)


def _centring_pad(n_samples: int, hop: int, win: int, n_fft: int) -> tuple[int, int]:
    """Zeros (left, right) that make librosa's ``center=False`` frames the module's centred frames."""
    if n_samples % hop:
        raise ValueError(f"{n_samples} samples is not a whole number of {hop}-sample hops")
    if win < hop or (win - hop) % 2:
        raise ValueError(f"window {win} must be >= hop {hop} and differ from it by an even number of samples")
    if n_fft < win:
        raise ValueError(f"n_fft {n_fft} is shorter than the window {win}")
    left = (n_fft - win) // 2 + (win - hop) // 2
    return left, n_fft - hop - left


def mel_power(samples: np.ndarray, rate: int, hop: int, win: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(S, n_mels) float32 power mel spectrogram of (S·hop,) samples, one frame per ``hop`` samples.

    Needs ``win >= hop``, ``win - hop`` even (so the centring is exact) and ``n_fft >= win``.
    """
    padded = np.pad(np.asarray(samples, dtype=np.float32), _centring_pad(len(samples), hop, win, n_fft))
    spectrum = librosa.stft(padded, n_fft=n_fft, hop_length=hop, win_length=win, window="hann", center=False)
    return librosa.util.abs2(spectrum).T @ mel_filterbank(rate, n_fft, n_mels).T


def log_mel(mel: np.ndarray) -> np.ndarray:
    """``ln(1e-5 + M)``, float32, same shape as the power mel ``M``."""
    return np.log(LOG_MEL_FLOOR + mel).astype(np.float32)


def mfcc(mel: np.ndarray, n_mfcc: int) -> np.ndarray:
    """(S, n_mfcc) float32: orthonormal DCT-II over mel bins of ``10 log10(max(M, 1e-10))``."""
    db = librosa.power_to_db(mel.T, ref=1.0, amin=_DB_FLOOR, top_db=None)
    return np.ascontiguousarray(librosa.feature.mfcc(S=db, n_mfcc=n_mfcc, dct_type=2, norm="ortho").T, np.float32)
