"""Synthetic speakers: a face shape, an appearance and a voice per identity, fixed by the seed."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from eat.synth.face_model import FaceShape, sample_shape
from eat.synth.render import Appearance, sample_appearance

_MALE_VOICES = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
_FEMALE_VOICES = ("f1", "f2", "f3", "f4", "f5")


def stable_rng(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (not on process or order)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


@dataclass(frozen=True)
class Identity:
    name: str
    female: bool
    shape: FaceShape
    appearance: Appearance
    voice: str            # eSpeak NG voice with variant, e.g. "en-us+f3"
    pitch: int            # eSpeak base pitch 0–100
    rate_wpm: int
    placement: tuple[float, float]  # where the eyes sit in the frame, as fractions of width and height

    @property
    def gender(self) -> str:
        return "female" if self.female else "male"


def make_identity(seed: int, name: str, female: bool, centred: bool) -> Identity:
    """Draw identity ``name``; ``centred`` puts the face in the frame centre (LRW/VoxCeleb2 crops)."""
    rng = stable_rng(seed, "identity", name)
    shape = sample_shape(rng, female)
    appearance = sample_appearance(rng, female)
    variants = _FEMALE_VOICES if female else _MALE_VOICES
    voice = f"en-us+{variants[rng.integers(len(variants))]}"
    pitch = int(rng.integers(55, 75) if female else rng.integers(30, 50))
    placement = (0.5, 0.43) if centred else (float(rng.uniform(0.33, 0.67)), float(rng.uniform(0.38, 0.48)))
    return Identity(name, female, shape, appearance, voice, pitch, int(rng.integers(150, 180)), placement)
