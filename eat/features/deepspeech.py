"""The paper's speech recogniser: Mozilla DeepSpeech 0.1.0 (frozen ``output_graph.pb``), as VOCA and EAT run it.

Optional: needs the graph file (``audio_features.deepspeech_graph``; the ``output_graph.pb`` of
DeepSpeech's v0.1.0 release models archive) and TensorFlow (``pip install -e ".[deepspeech]"``).
Nothing is downloaded; without either, :meth:`DeepSpeechBackend.open` raises
:class:`~eat.features.speech_backend.SpeechBackendUnavailable` saying what is missing and that the
offline ``ctc`` backend is the alternative.

Input front-end (facts about DeepSpeech 0.1.0's training features, which its graph expects;
implemented here with numpy, see :func:`deepspeech_input`):

* 16 kHz samples in int16 units; pre-emphasis ``y[n] = x[n] − 0.97 x[n−1]``;
* 25 ms frames (400 samples) every 10 ms (160), rectangular window, the last frame zero-padded;
  ``1 + ceil((N − 400) / 160)`` frames (``4T − 1`` for ``N = 640 T``);
* power spectrum ``|FFT_512|² / 512``; 26 triangular filters on the HTK mel scale between 0 Hz and
  8 kHz with edges on FFT bins ``floor(513 · f / 16000)``; natural log (zeros → machine epsilon);
* DCT-II (orthonormal), 26 cepstra, sinusoidal lifter ``1 + 11 sin(π n / 22)``; cepstrum 0
  replaced by the log frame energy;
* every second frame kept (the BiRNN's stride 2 → 50 fps; ``2T`` steps for ``T`` video frames);
* 9 frames of context either side, zeros beyond the clip → ``(S, 19 · 26 = 494)``, flattened
  oldest-first; the whole matrix standardised by its scalar mean and standard deviation.

Graph tensors: ``input_node`` (1, S, 494) float32, ``input_lengths`` (1,) int32 → ``logits``
(S, 1, 29), time-major, symbols in :data:`eat.features.alphabet.SYMBOLS` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft

from eat.features.spectral import hz_to_mel, mel_to_hz
from eat.features.speech_backend import SpeechBackendUnavailable
from eat.io.hashing import file_sha256

RATE = 16000
N_CEPSTRA = 26
N_CONTEXT = 9
INPUT_SIZE = (2 * N_CONTEXT + 1) * N_CEPSTRA   # 494
_FRAME, _STEP, _NFFT, _FILTERS, _PREEMPH, _LIFTER = 400, 160, 512, 26, 0.97, 22
_EPS = np.finfo(np.float64).eps
_EXTRA_HINT = 'pip install -e ".[deepspeech]"'


@lru_cache(maxsize=1)
def _filterbank() -> np.ndarray:
    """(26, 257) triangles with edges snapped to FFT bins, peak 1 (the front-end's filterbank)."""
    edges = np.floor((_NFFT + 1) * mel_to_hz(np.linspace(0.0, hz_to_mel(RATE / 2), _FILTERS + 2)) / RATE).astype(int)
    bank = np.zeros((_FILTERS, _NFFT // 2 + 1))
    for m in range(_FILTERS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        bank[m, lo:mid] = (np.arange(lo, mid) - lo) / max(mid - lo, 1)
        bank[m, mid:hi] = (hi - np.arange(mid, hi)) / max(hi - mid, 1)
    return bank


def deepspeech_mfcc(samples: np.ndarray) -> np.ndarray:
    """(N,) samples in [-1, 1] at 16 kHz → (n_frames, 26) float64 MFCCs at 100 fps (see module docstring)."""
    x = np.asarray(samples, dtype=np.float64) * 32768.0
    x = np.concatenate([x[:1], x[1:] - _PREEMPH * x[:-1]])
    n_frames = 1 if len(x) <= _FRAME else 1 + int(np.ceil((len(x) - _FRAME) / _STEP))
    x = np.concatenate([x, np.zeros((n_frames - 1) * _STEP + _FRAME - len(x))])
    frames = np.lib.stride_tricks.sliding_window_view(x, _FRAME)[::_STEP][:n_frames]
    power = np.abs(np.fft.rfft(frames, _NFFT)) ** 2 / _NFFT
    energy = power.sum(axis=1)
    bands = power @ _filterbank().T
    cepstra = scipy.fft.dct(np.log(np.where(bands == 0, _EPS, bands)), type=2, norm="ortho", axis=1)[:, :N_CEPSTRA]
    cepstra *= 1 + (_LIFTER / 2) * np.sin(np.pi * np.arange(N_CEPSTRA) / _LIFTER)
    cepstra[:, 0] = np.log(np.where(energy == 0, _EPS, energy))
    return cepstra


def deepspeech_input(samples: np.ndarray) -> np.ndarray:
    """(N,) samples → (S, 494) float32 network input at 50 fps (S = 2T for N = 640 T)."""
    cepstra = deepspeech_mfcc(samples)[::2]
    padded = np.concatenate([np.zeros((N_CONTEXT, N_CEPSTRA)), cepstra, np.zeros((N_CONTEXT, N_CEPSTRA))])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * N_CONTEXT + 1, axis=0)  # (S, 26, 19)
    inputs = windows.transpose(0, 2, 1).reshape(len(cepstra), INPUT_SIZE)
    return ((inputs - inputs.mean()) / inputs.std()).astype(np.float32)


def _tensorflow() -> Any:
    try:
        import tensorflow.compat.v1 as tf  # local: the optional deepspeech extra
    except ImportError as err:
        raise SpeechBackendUnavailable(
            "audio_features.speech_backend is 'deepspeech' but TensorFlow is not installed: run "
            f"{_EXTRA_HINT} (the optional extra), or set audio_features.speech_backend: ctc in params.yaml "
            "for the offline substitute recogniser") from err
    return tf


@lru_cache(maxsize=1)
def _session(graph_path: str) -> tuple[Any, Any, Any, Any]:
    """A TensorFlow session on the frozen graph, once per process: (session, input, lengths, logits)."""
    tf = _tensorflow()
    graph_def = tf.GraphDef()
    graph_def.ParseFromString(Path(graph_path).read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.import_graph_def(graph_def, name="deepspeech")
    names = ("deepspeech/input_node:0", "deepspeech/input_lengths:0", "deepspeech/logits:0")
    try:
        tensors = [graph.get_tensor_by_name(n) for n in names]
    except KeyError as err:
        raise SpeechBackendUnavailable(f"{graph_path}: not a DeepSpeech 0.1.0 graph ({err}); "
                                       "audio_features.deepspeech_graph must be v0.1.0's output_graph.pb") from err
    return (tf.Session(graph=graph), *tensors)


@dataclass(frozen=True)
class DeepSpeechBackend:
    """DeepSpeech 0.1.0 logits; picklable (the TensorFlow session lives in a per-process cache)."""

    graph: Path
    name: str = "deepspeech"

    @classmethod
    def open(cls, graph: Path) -> DeepSpeechBackend:
        """Check the graph file and TensorFlow are there; raise :class:`SpeechBackendUnavailable` if not."""
        if not graph.is_file():
            raise SpeechBackendUnavailable(
                f"{graph}: DeepSpeech 0.1.0 model not found. Put the output_graph.pb of DeepSpeech's v0.1.0 "
                "release (deepspeech-0.1.0-models.tar.gz) there or point audio_features.deepspeech_graph in "
                f"params.yaml at it, and install TensorFlow with {_EXTRA_HINT}; or set "
                "audio_features.speech_backend: ctc for the offline substitute recogniser")
        _tensorflow()
        return cls(graph)

    def fingerprint(self) -> str:
        return f"deepspeech:{file_sha256(self.graph)}"

    def logits(self, samples: np.ndarray) -> np.ndarray:
        session, inputs, lengths, logits = _session(str(self.graph))
        features = deepspeech_input(samples)
        out = session.run(logits, feed_dict={inputs: features[None], lengths: [len(features)]})
        return np.asarray(out[:, 0, :], dtype=np.float32)
