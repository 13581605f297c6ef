"""What every section of ``params.yaml`` shares: the strict frozen base model, the error type, and the constants
the sections and models agree on (emotion order, test identities, position-table rows, logit rate)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

EMOTIONS: tuple[str, ...] = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
"""MEAD's eight emotions, in the official EAT label order (ang, con, dis, fea, hap, neu, sad, sur)."""

# EAMM's MEAD test identities (Ji et al., SIGGRAPH 2022), used by EAT's evaluation (docs/paper_notes.md §6).
MEAD_TEST_IDENTITIES: tuple[str, ...] = ("M003", "M030", "W009", "W015")

A2ET_POSITIONS = 20
"""Rows of the sinusoid position table of A2ET and EDN (official ``PositionalEncoding(128, 20)``): at most this many
tokens, which bounds the window (W + 2 tokens in A2ET) and the prompts (P + 2 tokens in EDN)."""

LOGIT_RATE_HZ = 50
"""DeepSpeech 0.1.0 emits one logit vector per 20 ms (10 ms MFCC step, BiRNN stride 2); the ctc backend too."""

MIN_VGG_INPUT = 16
"""Smallest image side the VGG19 perceptual loss takes: it halves the image 4 times before relu5_1."""


X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"]
"""x264's speed presets: a faster one writes larger files at the same ``crf`` (quality)."""


class ConfigError(ValueError):
    """A parameter file is missing, unreadable, or has an invalid key or value."""


class Section(BaseModel):
    """The base of every section: an unknown key is an error, no value is coerced to another type, and the
    validated objects are frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
