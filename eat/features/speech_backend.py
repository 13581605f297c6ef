"""What a speech backend is (:class:`SpeechBackend`) and the error it raises when it cannot run here.

The backends (:mod:`eat.features.deepspeech`, :mod:`eat.features.recognizer`) implement this contract and
:mod:`eat.features.speech` picks one; keeping the contract apart lets both sides import it without importing
each other.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class SpeechBackendUnavailable(RuntimeError):
    """The selected speech backend cannot run here (missing model file or package); the message says how to fix it."""


class SpeechBackend(Protocol):
    """Something that turns a clip's samples into 50 fps logits over the 29 DeepSpeech symbols."""

    name: str

    def fingerprint(self) -> str:
        """A digest of the model weights: features are recomputed when it changes."""
        ...

    def logits(self, samples: np.ndarray) -> np.ndarray:
        """(S,) float32 samples in [-1, 1] at 16 kHz, S a multiple of 320 → (S / 320, 29) float32 logits."""
        ...
