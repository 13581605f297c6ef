"""Text-to-speech with phoneme and word timings, through eSpeak NG called by ctypes.

What: ``synthesize(text, voice, prosody)`` returns an :class:`Utterance`: mono float32 samples at
22050 Hz plus the timed phonemes (:class:`Phone`) and words (:class:`Word`) that eSpeak NG reports
while it speaks.

Why: the synthetic miniature of MEAD / LRW / VoxCeleb2 needs real, phonetically varied speech whose
phoneme schedule is known exactly, because that schedule drives the visemes of the synthetic faces
(see :mod:`eat.synth.visemes`). eSpeak NG is small, offline, fast (a sentence in a few
milliseconds) and ships as a wheel (``espeakng-loader``), so nothing is downloaded at run time.

Facts about libespeak-ng 1.52 (as shipped by espeakng-loader 0.2.4) this module relies on, all
checked on this machine:

* ``espeak_Initialize(2 /*AUDIO_OUTPUT_SYNCHRONOUS*/, 0, data_path, 1 /*PHONEME_EVENTS*/)`` returns
  the sample rate, 22050. In synchronous mode no thread is started, and ``espeak_Synth`` returns
  after every callback has run.
* The synth callback ``int cb(short *wav, int numsamples, espeak_EVENT *events)`` receives int16
  samples and an event array ended by type 0. ``espeak_EVENT`` is, on x86-64, 40 bytes:
  ``{int type; unsigned unique_identifier; int text_position; int length; int audio_position;
  int sample; void *user_data; union {int number; const char *name; char string[8];} id;}``.
  Event types: 1 word, 2 sentence, 3 mark, 4 play, 5 end of clause, 6 message terminated,
  7 phoneme, 8 sample rate. ``sample`` is the exact sample index of the event
  (``audio_position == sample * 1000 // 22050`` ms); we use it for sub-millisecond timings.
* Phoneme events carry the eSpeak mnemonic in ``id.string`` (up to 8 bytes, stress mark first,
  e.g. ``'i:``; bytes after the first NUL are garbage) and the 1-based *character* position of
  their word in ``text_position``. Pauses come as ``_``/``_:`` phonemes, language switches as
  ``(en)``/``(fr)``; some phonemes come with zero duration (e.g. the ``l`` of "twelve"). We drop
  all three from the phones (their audio stays).
* Word events give ``text_position`` (1-based, in characters) but a ``length`` that is unreliable
  ("It's" is reported as "It", a number as several words); we therefore take the word's text from
  the whitespace-separated token of the input that holds ``text_position``.
* eSpeak NG keeps synthesis state in static variables (pitch flutter, phase, random generator
  seeded from the clock at initialisation): a second utterance on the same loaded library, or
  one synthesised a second later, is not bit-identical to the first, and ``espeak_Terminate`` plus
  ``espeak_Initialize`` do not reset that state. Only a freshly loaded library does. So each call
  loads a private copy of the library from an anonymous in-memory file (``memfd_create``; a new
  inode, hence a new instance even if something else in the process has libespeak-ng loaded),
  seeds its generator with ``espeak_ng_SetRandSeed(0)``, speaks, and unloads it (``dlclose``).
  This costs about 4 ms per call and makes the output bit-identical across calls and processes.

The library image and the data path are located once per process (lazily); forked and spawned
workers are fine, since no library stays loaded between calls. Linux only (``memfd_create``).
Calls are serialised by a lock: threads may call :func:`synthesize`, but they do not run in
parallel; use processes for parallel synthesis.
"""

from __future__ import annotations

import _ctypes
import ctypes
import numbers
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import soxr

ESPEAK_SAMPLE_RATE = 22050

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 1
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EE_OK = 0
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_RAND_SEED = 0
_STRESS_MARKS = "',%="
_LOCK = threading.Lock()


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True)
class Phone:
    """One spoken phoneme: eSpeak mnemonic as reported (stress mark kept, e.g. ``'i:``) and its span."""

    symbol: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Word:
    """One word of the input text (surrounding punctuation stripped) and the span it is spoken in."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Prosody:
    """eSpeak NG voice parameters; ranges are the library's: rate 80-450 wpm, the others 0-100/0-200."""

    rate_wpm: int = 165
    pitch: int = 50
    pitch_range: int = 50
    volume: int = 100

    def __post_init__(self) -> None:
        for name, low, high in (("rate_wpm", 80, 450), ("pitch", 0, 100), ("pitch_range", 0, 100),
                                ("volume", 0, 200)):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or not low <= value <= high:
                raise ValueError(f"Prosody.{name} must be an int in [{low}, {high}], got {value!r}")


@dataclass(frozen=True, eq=False)
class Utterance:
    """Synthesised speech: read-only mono float32 samples in [-1, 1] and the phone/word timings."""

    samples: np.ndarray
    sample_rate: int
    phones: tuple[Phone, ...]
    words: tuple[Word, ...]

    def __post_init__(self) -> None:
        samples = np.ascontiguousarray(self.samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"samples must be 1-D, got shape {samples.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        samples.setflags(write=False)
        object.__setattr__(self, "samples", samples)

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / self.sample_rate

    def resample(self, rate: int) -> Utterance:
        """The same utterance at ``rate`` Hz (soxr, very high quality, deterministic); timings unchanged."""
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if rate == self.sample_rate:
            return self
        samples = soxr.resample(self.samples, self.sample_rate, rate, quality="VHQ")
        return Utterance(np.clip(samples, -1.0, 1.0), rate, self.phones, self.words)

    def pad(self, lead_s: float, tail_s: float) -> Utterance:
        """Add ``lead_s`` s of silence before and ``tail_s`` s after; timings shift by the lead.

        Both are rounded to whole samples, and the shift is the rounded lead, so timings stay exact.
        """
        if lead_s < 0 or tail_s < 0:
            raise ValueError(f"padding must be non-negative, got lead {lead_s}, tail {tail_s}")
        lead, tail = round(lead_s * self.sample_rate), round(tail_s * self.sample_rate)
        shift = lead / self.sample_rate
        samples = np.concatenate([np.zeros(lead, np.float32), self.samples, np.zeros(tail, np.float32)])
        phones = tuple(Phone(p.symbol, p.start_s + shift, p.end_s + shift) for p in self.phones)
        words = tuple(Word(w.text, w.start_s + shift, w.end_s + shift) for w in self.words)
        return Utterance(samples, self.sample_rate, phones, words)


@dataclass(frozen=True)
class _RawEvent:
    """The fields of an eSpeak event this module uses, copied out of the callback's buffer."""

    kind: int
    sample: int
    text_position: int
    symbol: str


@lru_cache(maxsize=1)
def _library() -> tuple[bytes, Path]:
    """The libespeak-ng image and its data folder, read once per process."""
    try:
        import espeakng_loader  # local: its absence becomes the RuntimeError below (tests/test_speech_visemes.py)
    except ImportError as err:
        raise RuntimeError("eSpeak NG is missing: install the espeakng-loader package") from err
    library, data = Path(espeakng_loader.get_library_path()), Path(espeakng_loader.get_data_path())
    if not library.is_file() or not (data / "phontab").is_file():
        raise RuntimeError(f"espeakng-loader is broken ({library}, {data}): reinstall espeakng-loader")
    return library.read_bytes(), data


@lru_cache(maxsize=1)
def _voice_names() -> tuple[frozenset[str], frozenset[str]]:
    """Languages (voice file names, lower case, e.g. ``en-us``) and variants (``!v`` files, e.g. ``f3``)."""
    data = _library()[1]
    languages = frozenset(p.name.lower() for p in (data / "lang").rglob("*") if p.is_file())
    variants = frozenset(p.name for p in (data / "voices" / "!v").iterdir() if p.is_file())
    return languages, variants


def _check_voice(voice: str) -> None:
    """Raise ValueError unless ``voice`` is ``language`` or ``language+variant`` known to eSpeak NG."""
    languages, variants = _voice_names()
    language, _, variant = voice.partition("+")
    if language.lower() in languages and (not variant or variant in variants):
        return
    examples = ", ".join(sorted(languages, key=lambda lang: (lang != "en-us", not lang.startswith("en"), lang))[:6])
    some_variants = ", ".join(sorted(v for v in variants if len(v) == 2 and v[0] in "fm" and v[1].isdigit()))
    raise ValueError(
        f"unknown eSpeak NG voice {voice!r}: use 'language' or 'language+variant', e.g. languages "
        f"{examples} (and {len(languages)} in all), variants {some_variants} (and {len(variants)} in all)"
    )


@contextmanager
def _fresh_engine() -> Iterator[ctypes.CDLL]:
    """A newly loaded, initialised and seeded private instance of libespeak-ng, unloaded afterwards."""
    image, data = _library()
    fd = os.memfd_create("libespeak-ng")
    try:
        os.write(fd, image)
        lib = ctypes.CDLL(f"/proc/self/fd/{fd}", mode=ctypes.RTLD_LOCAL)
    except OSError as err:
        raise RuntimeError(f"cannot load libespeak-ng from espeakng-loader: {err}") from err
    finally:
        os.close(fd)
    try:
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data).encode(),
                                     _INITIALIZE_PHONEME_EVENTS)
        if rate != ESPEAK_SAMPLE_RATE:
            raise RuntimeError(f"espeak_Initialize returned {rate}, expected {ESPEAK_SAMPLE_RATE} Hz")
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed(_RAND_SEED)
        yield lib
    finally:
        lib.espeak_Terminate()
        _ctypes.dlclose(lib._handle)


class _Recorder:
    """Collects the samples and events that eSpeak hands to the synth callback."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.events: list[_RawEvent] = []
        self.error: BaseException | None = None
        self.callback = _SynthCallback(self._on_audio)

    def _on_audio(self, wav: ctypes._Pointer, n: int, events: ctypes._Pointer) -> int:
        """Copy one buffer out; exceptions cannot cross into C, so keep them and ask eSpeak to stop."""
        try:
            if n > 0:
                self.chunks.append(ctypes.string_at(wav, 2 * n))
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                self.events.append(_copy_event(events[i]))
                i += 1
        except BaseException as err:  # noqa: BLE001 - C cannot unwind Python errors; _speak() re-raises it
            self.error = err
            return 1
        return 0

    def samples(self) -> np.ndarray:
        """All audio as float32 in [-1, 1)."""
        pcm = np.frombuffer(b"".join(self.chunks), dtype="<i2")
        return pcm.astype(np.float32) / 32768.0


def _copy_event(event: _Event) -> _RawEvent:
    """Copy an event; only phoneme events carry a string (cut at the first NUL, as in ``id.string``)."""
    symbol = event.id.string.decode("utf-8", "replace") if event.type == _EVENT_PHONEME else ""
    return _RawEvent(event.type, event.sample, event.text_position, symbol)


def _speak(text: str, voice: str, prosody: Prosody) -> tuple[np.ndarray, list[_RawEvent]]:
    """Run eSpeak NG on ``text``; returns the samples and the raw event stream."""
    recorder = _Recorder()
    encoded = text.encode("utf-8")
    with _LOCK, _fresh_engine() as lib:
        lib.espeak_SetSynthCallback(recorder.callback)
        if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != _EE_OK:
            raise ValueError(f"eSpeak NG could not load voice {voice!r}")
        for parameter, value in ((_PARAM_RATE, prosody.rate_wpm), (_PARAM_VOLUME, prosody.volume),
                                 (_PARAM_PITCH, prosody.pitch), (_PARAM_RANGE, prosody.pitch_range)):
            lib.espeak_SetParameter(parameter, int(value), 0)
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        status = lib.espeak_Synth(encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
    if recorder.error is not None:
        raise recorder.error
    if status != _EE_OK:
        raise RuntimeError(f"espeak_Synth failed with status {status}")
    return recorder.samples(), recorder.events


def _is_phone(symbol: str) -> bool:
    """False for eSpeak's pseudo-phonemes: pauses and boundaries (``_``, ``_:``, ``_|``, ``||``, empty)
    and language switches (``(en)``, emitted when a non-English voice reads an English word)."""
    base = symbol.lstrip(_STRESS_MARKS)
    return not (base == "" or base.startswith(("_", "(")) or base == "||")


def _phones(events: list[_RawEvent], n_samples: int, rate: int) -> tuple[Phone, ...]:
    """Phones from phoneme events: each lasts until the next phoneme event (pauses included), the last
    until the end of the audio; pseudo-phonemes (pauses, language switches) and zero-length
    phonemes are dropped."""
    marks = [e for e in events if e.kind == _EVENT_PHONEME]
    ends = [e.sample for e in marks[1:]] + [n_samples]
    return tuple(
        Phone(mark.symbol, mark.sample / rate, end / rate)
        for mark, end in zip(marks, ends, strict=True)
        if _is_phone(mark.symbol) and end > mark.sample
    )


def _token_at(text: str, position: int) -> tuple[int, str]:
    """The whitespace-separated token of ``text`` holding 1-based character ``position``: its start
    index and its text with leading/trailing non-alphanumeric characters stripped."""
    index = min(max(position - 1, 0), len(text) - 1)
    start = index
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    end = index
    while end < len(text) and not text[end].isspace():
        end += 1
    token = text[start:end]
    left, right = 0, len(token)
    while left < right and not token[left].isalnum():
        left += 1
    while right > left and not token[right - 1].isalnum():
        right -= 1
    return start, token[left:right]


def _words(text: str, events: list[_RawEvent], phones: tuple[Phone, ...], rate: int) -> tuple[Word, ...]:
    """Words from word events, one per input token (events in the same token, e.g. the parts of a
    spoken number, are merged). A word starts at its event and ends at the end of its last phone,
    but no later than the next word's start (so pauses after a word are excluded)."""
    starts: list[tuple[int, str, float]] = []
    for event in events:
        if event.kind != _EVENT_WORD:
            continue
        token_start, token = _token_at(text, event.text_position)
        if token and (not starts or starts[-1][0] != token_start):
            starts.append((token_start, token, event.sample / rate))
    audio_end = phones[-1].end_s if phones else 0.0
    words = []
    for k, (_, token, start) in enumerate(starts):
        limit = starts[k + 1][2] if k + 1 < len(starts) else audio_end
        inside = [p.end_s for p in phones if start <= p.start_s < limit]
        end = min(max(inside), limit) if inside else limit
        words.append(Word(token, start, max(end, start)))
    return tuple(words)


def synthesize(text: str, voice: str = "en-us", prosody: Prosody = Prosody()) -> Utterance:
    """Speak ``text`` with eSpeak NG; deterministic (bit-identical for equal arguments, in any process).

    ``voice`` is an eSpeak language voice (``en-us``, ``en``, ``en-gb-scotland``...) optionally
    followed by ``+variant`` from ``espeak-ng-data/voices/!v`` (``en-us+f3``, ``en-us+m3``...).
    Raises ValueError for empty text or an unknown voice, RuntimeError if eSpeak NG is missing.
    """
    if not text.strip():
        raise ValueError("text is empty: nothing to synthesize")
    _check_voice(voice)
    samples, events = _speak(text, voice, prosody)
    phones = _phones(events, len(samples), ESPEAK_SAMPLE_RATE)
    words = _words(text, events, phones, ESPEAK_SAMPLE_RATE)
    return Utterance(samples, ESPEAK_SAMPLE_RATE, phones, words)
