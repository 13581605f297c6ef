"""Typed parameters of the ``train_speech_recognizer`` and ``audio_features`` stages.

The sections are declared in :mod:`eat.config` (``Params`` validates the whole file);
:class:`FeatureParams` is the audio stages' view of it — just the keys they read (``seed``,
``signal``, ``audio_features``, ``speech_recognizer``) plus the checks that tie them together.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from eat.config import (
    LOGIT_RATE_HZ,
    AudioFeaturesConfig,
    ConfigError,
    RayConfig,
    SignalConfig,
    SpeechRecognizerConfig,
    format_errors,
    read_yaml,
    speech_step_errors,
)


class FeatureParams(BaseModel):
    """The parts of ``params.yaml`` the audio stages read (other sections are ignored here)."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    seed: int
    signal: SignalConfig
    audio_features: AudioFeaturesConfig
    speech_recognizer: SpeechRecognizerConfig
    ray: RayConfig

    @model_validator(mode="after")
    def _logit_rate(self) -> FeatureParams:
        errors = speech_step_errors(self.signal, self.speech_recognizer)
        if errors:
            raise ValueError("; ".join(errors))
        return self

    @property
    def speech_hop(self) -> int:
        """Samples per 50 fps logit step (320 at 16 kHz)."""
        return self.signal.audio_rate // LOGIT_RATE_HZ

    @property
    def steps_per_frame(self) -> int:
        """50 fps logit steps per video frame (2 at 25 fps)."""
        return self.signal.hop_length // self.speech_hop


def load_feature_params(path: Path | str = "params.yaml") -> FeatureParams:
    """Validate the audio stages' sections of ``path``; :class:`ConfigError` names the bad key."""
    try:
        return FeatureParams.model_validate(read_yaml(path))
    except ValidationError as err:
        raise ConfigError(format_errors(path, err)) from None
