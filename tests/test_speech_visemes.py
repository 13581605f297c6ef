"""Speech synthesis (eSpeak NG via ctypes) and the phoneme → viseme mouth tracks built on it."""

from __future__ import annotations

import multiprocessing
import re
import sys

import numpy as np
import pytest

from eat.synth import speech
from eat.synth.speech import Phone, Prosody, Utterance, synthesize
from eat.synth.visemes import NEUTRAL, REST, mouth_track, viseme_of

TEXT = "Bob moved the big blue boat past the harbour wall."


@pytest.fixture(scope="module")
def utt() -> Utterance:
    return synthesize(TEXT)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def _segment(u: Utterance, start_s: float, end_s: float) -> np.ndarray:
    return u.samples[round(start_s * u.sample_rate):round(end_s * u.sample_rate)]


def _median_f0(u: Utterance, fmin: float = 60.0, fmax: float = 500.0) -> float:
    """Median F0 of the loud (voiced) 40 ms frames, from the autocorrelation peak in [fmin, fmax]."""
    frame, sr = int(0.04 * u.sample_rate), u.sample_rate
    frames = [u.samples[i:i + frame] for i in range(0, len(u.samples) - frame, frame // 2)]
    loud = max(_rms(f) for f in frames) * 0.3
    lo, hi = int(sr / fmax), int(sr / fmin)
    f0 = []
    for f in frames:
        if _rms(f) < loud:
            continue
        centred = f - f.mean()
        ac = np.correlate(centred, centred, mode="full")[frame - 1:]
        f0.append(sr / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(f0))


def test_sentence_has_plausible_audio_and_timings(utt: Utterance) -> None:
    assert utt.sample_rate == 22050
    assert utt.samples.dtype == np.float32 and utt.samples.ndim == 1
    assert 0.5 < utt.duration_s < 10.0
    assert np.abs(utt.samples).max() <= 1.0
    assert len(utt.phones) > 20
    for p in utt.phones:
        assert 0.0 <= p.start_s < p.end_s <= utt.duration_s + 1e-9
        assert not p.symbol.lstrip("',").startswith("_")
    for a, b in zip(utt.phones, utt.phones[1:], strict=False):
        assert b.start_s >= a.end_s - 1e-9
    for a, b in zip(utt.words, utt.words[1:], strict=False):
        assert a.start_s <= a.end_s <= b.start_s
    assert utt.words[-1].end_s <= utt.duration_s
    assert [w.text for w in utt.words] == re.findall(r"[\w']+", TEXT)


def test_vowels_are_much_louder_than_the_silence_around_the_speech(utt: Utterance) -> None:
    vowels = [p for p in utt.phones if viseme_of(p.symbol).aperture >= 0.5]
    assert len(vowels) >= 4
    silence = np.concatenate([_segment(utt, 0.0, utt.phones[0].start_s),
                              _segment(utt, utt.phones[-1].end_s, utt.duration_s)])
    assert len(silence) > 0
    vowel_rms = np.median([_rms(_segment(utt, p.start_s, p.end_s)) for p in vowels])
    assert vowel_rms > 0.03
    assert vowel_rms > 30 * _rms(silence)


def test_synthesis_is_bit_identical_across_calls_and_processes(utt: Utterance) -> None:
    again = synthesize(TEXT)
    assert np.array_equal(again.samples, utt.samples)
    assert again.phones == utt.phones and again.words == utt.words
    synthesize("Something else in between, with another voice.", "en-us+f3")
    for method in ("spawn", "fork"):
        with multiprocessing.get_context(method).Pool(1) as pool:
            other = pool.apply(synthesize, (TEXT,))
        assert np.array_equal(other.samples, utt.samples), method
        assert other.phones == utt.phones, method


def test_noisy_variant_is_deterministic_too() -> None:
    # Variants with breath noise use eSpeak's random generator, which we seed.
    a, b = synthesize("Five wild foxes.", "en-us+f3"), synthesize("Five wild foxes.", "en-us+f3")
    assert np.array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples[:len(b.samples)], synthesize("Five wild foxes.", "en-us+m3").samples[
        :len(b.samples)])


def test_slower_rate_gives_longer_speech(utt: Utterance) -> None:
    slow = synthesize(TEXT, prosody=Prosody(rate_wpm=110))
    assert slow.duration_s > 1.3 * utt.duration_s


def test_higher_pitch_gives_higher_f0() -> None:
    low = synthesize(TEXT, prosody=Prosody(pitch=20))
    high = synthesize(TEXT, prosody=Prosody(pitch=80))
    f_low, f_high = _median_f0(low), _median_f0(high)
    assert 60 < f_low < f_high < 400
    assert f_high > 1.2 * f_low


def test_resample_and_pad_keep_timings_consistent(utt: Utterance) -> None:
    r = utt.resample(16000)
    assert r.sample_rate == 16000 and r.samples.dtype == np.float32
    assert abs(r.duration_s - utt.duration_s) < 1e-3
    assert r.phones == utt.phones and r.words == utt.words
    p = utt.pad(0.25, 0.5)
    assert abs(p.duration_s - utt.duration_s - 0.75) < 1e-4
    assert not p.samples[:5000].any()
    shift = p.phones[0].start_s - utt.phones[0].start_s
    assert abs(shift - 0.25) < 1.0 / utt.sample_rate
    assert abs(p.words[-1].end_s - utt.words[-1].end_s - shift) < 1e-9


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="xx-nowhere.*en-us"):
        synthesize("Hello.", "xx-nowhere")
    with pytest.raises(ValueError, match="en-us\\+nobody.*f3"):
        synthesize("Hello.", "en-us+nobody")
    with pytest.raises(ValueError, match="empty"):
        synthesize("   ")
    with pytest.raises(ValueError, match="rate_wpm"):
        Prosody(rate_wpm=20)


def test_missing_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)     # makes the import fail
    speech._library.cache_clear()
    speech._voice_names.cache_clear()
    with pytest.raises(RuntimeError, match="install the espeakng-loader"):
        synthesize("Hello.")


def test_viseme_targets_follow_phonetics() -> None:
    for closed in ("p", "b", "m"):
        assert viseme_of(closed).aperture == 0.0
    for open_vowel in ("A:", "a", "aI", "aU", "V"):
        assert viseme_of(open_vowel).aperture > 0.6
    assert viseme_of("i:").width > 0.8 and viseme_of("u:").rounding > 0.8
    assert viseme_of("w").rounding > viseme_of("i:").rounding
    assert viseme_of("f").aperture < 0.15
    assert viseme_of("'A:") == viseme_of(",A:") == viseme_of("A:")
    assert viseme_of("_:") == REST and viseme_of("") == REST
    assert viseme_of("e:") == viseme_of("e")
    assert viseme_of("~?") == NEUTRAL


def test_every_phone_of_real_speech_has_a_known_viseme(utt: Utterance) -> None:
    assert all(viseme_of(p.symbol) != NEUTRAL for p in utt.phones)


def test_mouth_track_opens_on_open_vowels_and_closes_on_m() -> None:
    phones = [Phone("m", 0.1, 0.3), Phone("'A:", 0.3, 0.6), Phone("m", 0.6, 0.8)]
    track = mouth_track(phones, fps=50, n_frames=50)
    assert track.shape == (50, 3) and track.dtype == np.float32
    assert track.min() >= 0.0 and track.max() <= 1.0
    assert track[22, 0] > 0.6                      # t = 0.45 s, middle of A:
    assert track[9, 0] < 0.02 and track[34, 0] < 0.02  # middles of the m's
    assert track[-1, 0] == pytest.approx(REST.aperture, abs=1e-3)
    sharp = mouth_track(phones, fps=50, n_frames=50, coarticulation_s=0.0)
    assert sharp[9, 0] == 0.0 and sharp[22, 0] == pytest.approx(viseme_of("A:").aperture)
    early = mouth_track(phones, fps=50, n_frames=50, lead_s=0.1)
    assert np.allclose(early[:-5], track[5:], atol=1e-6)


def test_mouth_track_is_independent_of_fps(utt: Utterance) -> None:
    at10 = mouth_track(utt.phones, fps=10, n_frames=25)
    at30 = mouth_track(utt.phones, fps=30, n_frames=75)
    assert np.allclose(at10, at30[1::3], atol=1e-5)   # frame centres (i + .5)/10 == (3i + 1.5)/30
    assert at10[:, 0].max() > 0.5 and at10[:, 2].max() > 0.5


def test_real_speech_closes_the_lips_on_bilabials(utt: Utterance) -> None:
    fps = 100.0
    track = mouth_track(utt.phones, fps, int(utt.duration_s * fps))
    centre = {p: track[int((p.start_s + p.end_s) / 2 * fps), 0] for p in utt.phones}
    bilabial = [a for p, a in centre.items() if p.symbol in ("m", "b", "p")]
    opened = [a for p, a in centre.items() if viseme_of(p.symbol).aperture >= 0.6]
    # With the default 40 ms coarticulation, short closures (median 58 ms) do not quite reach 0.
    assert np.median(bilabial) < 0.25 and np.median(bilabial) < 0.3 * np.median(opened)
    assert min(bilabial) < 0.05
