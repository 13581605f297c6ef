"""Typed, validated run parameters loaded from ``params.yaml``.

``params.yaml`` is the single source of run parameters, one section per stage (DVC tracks each stage's keys).
This package turns it into frozen pydantic objects: an unknown key or a value of the wrong type is a
:class:`ConfigError` that names the file and the dotted key, and so is a value that contradicts another section
(:data:`CROSS_SECTION_CHECKS`: what the models and stages assume of two sections together). Profiles
(``configs/*.yaml``) are partial overlays of the same shape, merged on top with :func:`apply_profile`.

By concern: :mod:`eat.config.base` (the shared base model, error type and constants), :mod:`eat.config.data` (the
data stages' sections), :mod:`eat.config.models` (the paper's models), :mod:`eat.config.supervisors` (the speech
recogniser, lip-sync expert and Emotion-FAN), :mod:`eat.config.params` (the whole file, the checks across sections,
loading and profiles); ``python -m eat.config`` is the command line (:mod:`eat.config.__main__`). Import from here.
"""

from __future__ import annotations

from eat.config.base import (
    A2ET_POSITIONS,
    EMOTIONS,
    LOGIT_RATE_HZ,
    MEAD_TEST_IDENTITIES,
    MIN_VGG_INPUT,
    ConfigError,
    Section,
    X264Preset,
)
from eat.config.data import (
    AudioFeaturesConfig,
    CropAlignConfig,
    DataConfig,
    FrameSize,
    IngestConfig,
    LrwSynthConfig,
    MeadSynthConfig,
    NormaliseConfig,
    RayConfig,
    SignalConfig,
    SynthConfig,
    VoxSynthConfig,
)
from eat.config.models import (
    A2ETConfig,
    A2ETPhaseConfig,
    A2ETTrainConfig,
    AdaptationConfig,
    AdaptationTrainConfig,
    AdaptationVariant,
    EmotionControlConfig,
    EvaluateConfig,
    LatentConfig,
    LatentTrainConfig,
    OptimConfig,
    PCAConfig,
)
from eat.config.params import (
    CROSS_SECTION_CHECKS,
    Params,
    apply_profile,
    deep_merge,
    flatten,
    format_errors,
    load_params,
    parse_params,
    read_yaml,
    speech_step_errors,
    write_yaml_atomic,
)
from eat.config.supervisors import (
    EmotionClassifierConfig,
    EmotionStillsConfig,
    SpeechRecognizerConfig,
    SyncExpertConfig,
)

__all__ = [
    "EMOTIONS", "MEAD_TEST_IDENTITIES", "A2ET_POSITIONS", "LOGIT_RATE_HZ", "MIN_VGG_INPUT", "X264Preset",
    "ConfigError", "Section", "FrameSize", "MeadSynthConfig", "LrwSynthConfig", "VoxSynthConfig", "SynthConfig",
    "DataConfig", "RayConfig", "IngestConfig", "NormaliseConfig", "CropAlignConfig", "SignalConfig",
    "AudioFeaturesConfig", "LatentConfig", "LatentTrainConfig", "PCAConfig", "A2ETConfig", "A2ETPhaseConfig",
    "A2ETTrainConfig", "AdaptationConfig", "AdaptationVariant", "AdaptationTrainConfig", "EmotionControlConfig",
    "EvaluateConfig", "OptimConfig", "SpeechRecognizerConfig", "SyncExpertConfig", "EmotionStillsConfig",
    "EmotionClassifierConfig", "Params", "speech_step_errors", "CROSS_SECTION_CHECKS", "read_yaml", "parse_params",
    "load_params", "deep_merge", "flatten", "format_errors", "write_yaml_atomic", "apply_profile",
]
