"""Speech (semantic) features S: recogniser logits at 50 fps, cut into one window per video frame.

The paper feeds A2ET with the outputs of a speech recogniser (DeepSpeech) run on the audio
(docs/paper_notes.md §1); the official code stores DeepSpeech 0.1.0's 29 character logits at 50 fps
as 16-step windows per video frame, ``(T, 16, 29)`` per clip. Two backends produce the logits:

* ``deepspeech`` (:mod:`eat.features.deepspeech`): the paper's DeepSpeech 0.1.0 frozen graph,
  when the user supplies it and has TensorFlow (optional extra ``deepspeech``);
* ``ctc`` (:mod:`eat.features.recognizer`): a small CTC character recogniser over the same 29
  symbols (:mod:`eat.features.alphabet`), trained offline by the ``train_speech_recognizer``
  stage, labelled a substitute.

Both return raw (pre-softmax) logits, ``(2T, 29)`` for a clip of ``T`` video frames: step ``j``
describes the 20 ms of audio ``[320 j, 320 (j + 1))`` (at 16 kHz), so video frame ``i`` owns
steps ``2i`` and ``2i + 1``.

Windowing (:func:`speech_windows`): frame ``i`` gets the ``W`` (= 16) steps centred on it,
``logits[2i + 1 − W/2 : 2i + 1 + W/2]`` = steps ``2i − 7 … 2i + 8``, with zero logits outside
the clip (as the official preprocessing pads). The official windows are ``logits[2i − 8 : 2i + 8]``,
centred on the *start* of frame ``i``, one step (20 ms) earlier, matching its mel framing
(:mod:`eat.features.spectral`); we centre both on the frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from eat.features.config import FeatureParams
from eat.features.deepspeech import DeepSpeechBackend
from eat.features.recognizer import CTCBackend
from eat.features.speech_backend import SpeechBackend


def speech_windows(logits: np.ndarray, n_frames: int, window: int, steps_per_frame: int) -> np.ndarray:
    """(n_frames · r, K) logits → (n_frames, window, K) float32, window ``i`` centred on video frame ``i``.

    Row ``i`` holds steps ``r i + r/2 − window/2`` … ``r i + r/2 + window/2 − 1`` (``r`` =
    ``steps_per_frame``), zeros where that range leaves the clip.
    """
    if logits.ndim != 2 or len(logits) != n_frames * steps_per_frame:
        raise ValueError(f"logits {logits.shape} do not have {n_frames} × {steps_per_frame} steps")
    if window % 2 or steps_per_frame % 2:
        raise ValueError(f"window ({window}) and steps_per_frame ({steps_per_frame}) must be even to centre windows")
    first = steps_per_frame // 2 - window // 2          # start of frame 0's window, relative to step 0
    padded = np.zeros((len(logits) + 2 * window, logits.shape[1]), dtype=np.float32)
    padded[window:window + len(logits)] = logits
    starts = window + first + steps_per_frame * np.arange(n_frames)
    return np.ascontiguousarray(sliding_window_view(padded, window, axis=0)[starts].transpose(0, 2, 1))


def make_backend(params: FeatureParams, recognizer: Path | str) -> SpeechBackend:
    """The backend ``params.audio_features.speech_backend`` names.

    Raises :class:`~eat.features.speech_backend.SpeechBackendUnavailable` when it cannot run here.
    """
    if params.audio_features.speech_backend == "deepspeech":
        return DeepSpeechBackend.open(Path(params.audio_features.deepspeech_graph))
    return CTCBackend.open(Path(recognizer))
