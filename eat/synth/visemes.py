"""Phoneme → mouth shape (viseme) mapping and frame-rate mouth tracks from a phoneme schedule.

What: :func:`viseme_of` maps an eSpeak NG phoneme mnemonic to a :class:`Viseme`, three numbers in
[0, 1] (jaw/lip aperture, lip spread, lip rounding/protrusion); :func:`mouth_track` turns the
timed phones of :mod:`eat.synth.speech` into a per-frame (aperture, width, rounding) track.

Why: the synthetic faces must move their mouths in sync with the synthetic speech, so that
lip-sync metrics and audio-to-expression models have a real audio-visual relation to learn.

How the targets were chosen (facts, not fits):

* Many phonemes look alike on the lips; the MPEG-4 Face and Body Animation standard
  (ISO/IEC 14496-2) groups English into 14 visemes: 1 /p b m/, 2 /f v/, 3 /θ ð/, 4 /t d/,
  5 /k g/, 6 /tʃ dʒ ʃ/, 7 /s z/, 8 /n l/, 9 /r/, 10 /ɑ/, 11 /e/, 12 /ɪ/, 13 /ɒ/, 14 /ʊ/.
  The animators' Preston Blair set has the same kind of groups: AI, E, O, U, WQ, L, MBP, FV, rest.
* Bilabials close the lips completely (aperture 0); labiodentals press the lower lip to the upper
  teeth (nearly closed); dentals and alveolars leave a small jaw opening with the lips neutral;
  /s z/ bring the teeth together with spread lips; the English postalveolars /ʃ ʒ tʃ dʒ/ and /r/
  are produced with protruded, rounded lips; /w/ is the most rounded, narrow shape.
* Vowel aperture follows vowel height (open /a ɑ/ large, close /i u/ small); lip spread follows
  frontness of unrounded vowels (/i/ most spread); rounding marks the English rounded back vowels
  /u ʊ ɔ oʊ/. Diphthongs take the shape of their first, dominant element.
* Velars and /h/ show little of their own on the lips and take a neutral, half-open shape.

The smoothing of :func:`mouth_track` (a Gaussian over time) stands for coarticulation: lips move
continuously and anticipate the next target instead of jumping between held shapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import gaussian_filter1d

if TYPE_CHECKING:
    from eat.synth.speech import Phone

_FINE_STEP_S = 0.001
_SMOOTHING_REACH = 4.0          # the Gaussian is negligible beyond 4 sigma
_STRESS_MARKS = "',%="
_MODIFIERS = ":#-/~.^;[\"0123456789"


@dataclass(frozen=True)
class Viseme:
    """A mouth-shape target: aperture (jaw/lip opening), width (lip spread), rounding (protrusion), each in [0, 1]."""

    aperture: float
    width: float
    rounding: float

    def __post_init__(self) -> None:
        for name in ("aperture", "width", "rounding"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Viseme.{name} must be in [0, 1], got {getattr(self, name)}")


REST = Viseme(0.0, 0.5, 0.0)        # lips closed and relaxed: silence and pauses
NEUTRAL = Viseme(0.3, 0.5, 0.1)     # half-open, unmarked: phonemes we do not know

_V = Viseme
# Keys are eSpeak NG mnemonics of the en-us phoneme table (phontab tables en-us > en > base1 > base).
_TABLE: dict[str, Viseme] = {
    # MPEG-4 viseme 1 / Blair MBP: bilabial closure.
    "p": _V(0.0, 0.5, 0.1), "b": _V(0.0, 0.5, 0.1), "m": _V(0.0, 0.5, 0.1), "m-": _V(0.0, 0.5, 0.1),
    # MPEG-4 viseme 2 / Blair FV: lower lip against the upper teeth.
    "f": _V(0.08, 0.55, 0.0), "v": _V(0.08, 0.55, 0.0), "v#": _V(0.08, 0.55, 0.0),
    # MPEG-4 viseme 3: tongue tip between the teeth, small opening.
    "T": _V(0.18, 0.55, 0.0), "D": _V(0.18, 0.55, 0.0),
    # MPEG-4 viseme 4 and 8 / Blair L: alveolars, small jaw opening, lips neutral.
    "t": _V(0.2, 0.55, 0.0), "d": _V(0.2, 0.55, 0.0), "t#": _V(0.2, 0.55, 0.0),
    "t2": _V(0.2, 0.55, 0.0), "d#": _V(0.2, 0.55, 0.0), "n": _V(0.2, 0.55, 0.0),
    "n-": _V(0.2, 0.55, 0.0), "l": _V(0.28, 0.55, 0.0), "l-": _V(0.28, 0.55, 0.0),
    "l#": _V(0.28, 0.55, 0.0), "@L": _V(0.3, 0.5, 0.05),
    # MPEG-4 viseme 7: sibilants, teeth close together, lips spread.
    "s": _V(0.1, 0.65, 0.0), "z": _V(0.1, 0.65, 0.0), "z#": _V(0.1, 0.65, 0.0),
    "z/2": _V(0.1, 0.65, 0.0), "ts": _V(0.1, 0.65, 0.0),
    # MPEG-4 viseme 6: postalveolars, English rounds and protrudes the lips.
    "S": _V(0.15, 0.35, 0.6), "Z": _V(0.15, 0.35, 0.6), "tS": _V(0.15, 0.35, 0.6),
    "dZ": _V(0.15, 0.35, 0.6),
    # MPEG-4 viseme 5: velars (and uvular/palatal fricatives), lips take no shape of their own.
    "k": _V(0.3, 0.5, 0.0), "g": _V(0.3, 0.5, 0.0), "N": _V(0.3, 0.5, 0.0), "N-": _V(0.3, 0.5, 0.0),
    "x": _V(0.3, 0.5, 0.0), "k#": _V(0.3, 0.5, 0.0), "C": _V(0.3, 0.55, 0.0),
    # Glottals: the mouth already holds the next vowel; a neutral half-open shape.
    "h": _V(0.35, 0.5, 0.0), "?": _V(0.3, 0.5, 0.0),
    # MPEG-4 viseme 9: English /r/ is labialised (rounded, slightly protruded).
    "r": _V(0.2, 0.35, 0.5), "r-": _V(0.25, 0.4, 0.45), "r/": _V(0.2, 0.35, 0.5),
    # Blair WQ: /w/ is a close, fully rounded and protruded shape.
    "w": _V(0.1, 0.1, 0.95), "w#": _V(0.1, 0.1, 0.95),
    # /j/ is the consonant of /i/: close and spread; eSpeak inserts ";" as a /j/ glide ("the ocean").
    "j": _V(0.2, 0.8, 0.0), ";": _V(0.2, 0.8, 0.0),
    # Close front vowels (MPEG-4 viseme 12, Blair E): small aperture, spread lips.
    "i:": _V(0.22, 0.9, 0.0), "i": _V(0.25, 0.8, 0.0), "I": _V(0.3, 0.8, 0.0),
    "I2": _V(0.3, 0.75, 0.0), "I#": _V(0.3, 0.7, 0.0), "I2#": _V(0.3, 0.7, 0.0),
    "i@": _V(0.3, 0.75, 0.0), "i@3": _V(0.3, 0.75, 0.0), "IR": _V(0.3, 0.7, 0.15),
    # Mid front vowels (MPEG-4 viseme 11, Blair E): medium aperture, spread.
    "e": _V(0.45, 0.75, 0.0), "E": _V(0.5, 0.75, 0.0), "E#": _V(0.5, 0.7, 0.0),
    "E2": _V(0.5, 0.75, 0.0), "e:": _V(0.45, 0.75, 0.0), "e#": _V(0.45, 0.7, 0.0),
    "eI": _V(0.45, 0.75, 0.0), "e@": _V(0.5, 0.7, 0.0),
    # Open vowels (MPEG-4 viseme 10, Blair AI): large aperture.
    "a": _V(0.75, 0.7, 0.0), "aa": _V(0.75, 0.65, 0.0), "a#": _V(0.6, 0.6, 0.0),
    "a2": _V(0.7, 0.65, 0.0), "a#2": _V(0.6, 0.6, 0.0), "A:": _V(0.9, 0.55, 0.05),
    "A@": _V(0.8, 0.5, 0.1), "A#": _V(0.8, 0.55, 0.05), "A~": _V(0.8, 0.55, 0.05),
    "aI": _V(0.85, 0.6, 0.0), "aI@": _V(0.8, 0.6, 0.0), "aI3": _V(0.8, 0.6, 0.0),
    "aU": _V(0.8, 0.5, 0.15), "aU@": _V(0.75, 0.5, 0.15), "V": _V(0.65, 0.5, 0.0),
    "VR": _V(0.6, 0.45, 0.2),
    # Central vowels: schwa and r-coloured schwa; /ɝ ɚ/ carry the lip rounding of English /r/.
    "@": _V(0.4, 0.5, 0.05), "@-": _V(0.35, 0.5, 0.05), "@2": _V(0.4, 0.5, 0.05),
    "@5": _V(0.4, 0.5, 0.05), "@#": _V(0.4, 0.5, 0.05), "3": _V(0.35, 0.45, 0.3),
    "3:": _V(0.4, 0.45, 0.3),
    # Open back vowels (MPEG-4 viseme 13, Blair O): open, slightly rounded.
    "0": _V(0.8, 0.45, 0.25), "0#": _V(0.75, 0.45, 0.25), "02": _V(0.75, 0.45, 0.25),
    "O:": _V(0.6, 0.3, 0.7), "O": _V(0.6, 0.35, 0.6), "O2": _V(0.6, 0.35, 0.6),
    "O@": _V(0.55, 0.3, 0.7), "o@": _V(0.55, 0.3, 0.7), "OI": _V(0.55, 0.35, 0.6),
    "O~": _V(0.6, 0.35, 0.6),
    # Close-mid and close back rounded vowels (MPEG-4 viseme 14, Blair O/U): rounded, protruded.
    "o:": _V(0.5, 0.25, 0.8), "oU": _V(0.5, 0.25, 0.8), "oU#": _V(0.5, 0.25, 0.8),
    "u:": _V(0.25, 0.1, 1.0), "U": _V(0.3, 0.2, 0.8), "U@": _V(0.35, 0.2, 0.7),
    "o": _V(0.45, 0.25, 0.8), "u": _V(0.25, 0.1, 1.0),
    # Shared (base1) consonants the en-us table inherits but English rarely emits, by place:
    # bilabial fricative, alveolar taps, uvular/trilled r, palatal lateral, palatals, uvulars.
    "B": _V(0.05, 0.5, 0.1), "*": _V(0.2, 0.55, 0.0), "**": _V(0.2, 0.55, 0.0),
    "R": _V(0.25, 0.45, 0.2), "R2": _V(0.25, 0.45, 0.2), "R3": _V(0.25, 0.45, 0.2),
    "L": _V(0.28, 0.6, 0.0), "L/": _V(0.28, 0.6, 0.0), "J": _V(0.25, 0.65, 0.0),
    "J^": _V(0.25, 0.65, 0.0), "c": _V(0.25, 0.65, 0.0), "q": _V(0.3, 0.5, 0.0),
    "Q": _V(0.3, 0.5, 0.0), "X": _V(0.3, 0.5, 0.0), "#X1": _V(0.3, 0.5, 0.0),
}


def _is_pause(base: str) -> bool:
    """eSpeak pauses and boundaries (``_``, ``_:``, ``_!``, ``||``) and empty symbols."""
    return base == "" or base.startswith("_") or base == "||"


def viseme_of(symbol: str) -> Viseme:
    """The mouth target of an eSpeak NG phoneme mnemonic; never raises.

    Stress marks (``'``, ``,``, ``%``, ``=``) are dropped; pauses give :data:`REST`. A mnemonic not
    in the table loses its modifier characters (length ``:``, ``#``, digits, ``-``...) one at a time
    from the end until it matches (``e:`` → ``e``); failing that, its first character is tried, then
    :data:`NEUTRAL` is returned.
    """
    base = symbol.strip().lstrip(_STRESS_MARKS)
    if _is_pause(base):
        return REST
    candidate = base
    while candidate:
        if candidate in _TABLE:
            return _TABLE[candidate]
        if candidate[-1] not in _MODIFIERS:
            break
        candidate = candidate[:-1]
    return _TABLE.get(base[0], NEUTRAL)


def _fine_targets(phones: Sequence[Phone], grid: np.ndarray) -> np.ndarray:
    """Targets on a time grid: each phone's viseme over [start, end], REST elsewhere; shape (len(grid), 3)."""
    targets = np.tile(np.array([REST.aperture, REST.width, REST.rounding], np.float64), (len(grid), 1))
    for phone in phones:
        lo, hi = np.searchsorted(grid, [phone.start_s, phone.end_s], side="left")
        if hi > lo:
            vis = viseme_of(phone.symbol)
            targets[lo:hi] = (vis.aperture, vis.width, vis.rounding)
    return targets


def mouth_track(phones: Sequence[Phone], fps: float, n_frames: int, lead_s: float = 0.0,
                coarticulation_s: float = 0.04) -> np.ndarray:
    """Per-frame mouth shape, (n_frames, 3) float32 columns aperture, width, rounding, each in [0, 1].

    Frame ``i`` shows time ``t = (i + 0.5) / fps`` of the phone timings plus ``lead_s`` (positive
    ``lead_s`` makes the mouth anticipate the sound by that much). Each phone's target is held over
    [start, end), silence is :data:`REST`, and the result is smoothed by a Gaussian of standard
    deviation ``coarticulation_s`` on an absolute 1 ms grid before sampling, so the track does not
    depend on ``fps`` (0 disables smoothing).
    """
    if fps <= 0 or n_frames < 0 or coarticulation_s < 0:
        raise ValueError(f"need fps > 0, n_frames >= 0, coarticulation_s >= 0; got {fps}, {n_frames}, "
                         f"{coarticulation_s}")
    times = (np.arange(n_frames) + 0.5) / fps + lead_s
    if n_frames == 0:
        return np.zeros((0, 3), np.float32)
    reach = _SMOOTHING_REACH * coarticulation_s + _FINE_STEP_S
    first = np.floor((times[0] - reach) / _FINE_STEP_S)
    last = np.ceil((times[-1] + reach) / _FINE_STEP_S)
    grid = np.arange(first, last + 1) * _FINE_STEP_S
    fine = _fine_targets(phones, grid)
    if coarticulation_s > 0:
        fine = gaussian_filter1d(fine, coarticulation_s / _FINE_STEP_S, axis=0, mode="nearest")
    track = np.stack([np.interp(times, grid, fine[:, k]) for k in range(3)], axis=1)
    return np.clip(track, 0.0, 1.0).astype(np.float32)
