"""The emotion a user asks for → the weighted emotion mix :func:`eat.adapt.generate.emotion_codes` takes.

``--emotion happy`` is ``{"happy": 1}``; ``--intensity α`` scales it from neutral (:func:`intensity_mix`);
``--mix angry:0.5,surprised:0.5`` mixes the codes of several emotions. Names are MEAD's eight
(:data:`eat.config.EMOTIONS`); an unknown one fails listing them.
"""

from __future__ import annotations

from eat.adapt.generate import intensity_mix
from eat.adapt.model import emotion_index


def parse_mix(text: str) -> dict[str, float]:
    """``"angry:0.5,surprised:0.5"`` → {"angry": 0.5, "surprised": 0.5}; a bare name weighs 1."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        name = name.strip().lower()
        emotion_index(name)
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"--mix {text!r}: weight {weight!r} of {name} is not a number") from None
        if value < 0:
            raise ValueError(f"--mix {text!r}: weight of {name} is negative")
        mix[name] = mix.get(name, 0.0) + value
    if not mix or sum(mix.values()) <= 0:
        raise ValueError(f"--mix {text!r}: give at least one emotion with a positive weight, e.g. angry:0.5,happy:0.5")
    return mix


def emotion_mix(emotion: str | None = None, intensity: float | None = None, mix: str | None = None) -> dict[str, float]:
    """The mix of ``--emotion`` (at ``--intensity``, default 1) or of ``--mix`` (not both)."""
    if mix:
        if emotion or intensity is not None:
            raise ValueError("give either --emotion (with --intensity) or --mix, not both")
        return parse_mix(mix)
    if not emotion:
        raise ValueError("no emotion: give --emotion NAME or --mix NAME:WEIGHT,…")
    return intensity_mix(emotion.strip().lower(), 1.0 if intensity is None else float(intensity))


def describe(mix: dict[str, float]) -> str:
    return ",".join(f"{k}:{v:g}" for k, v in mix.items())
