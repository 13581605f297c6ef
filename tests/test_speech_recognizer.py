"""The ctc speech backend: alphabet, greedy CTC decoding, CER, and that training learns and resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from eat.config import SignalConfig
from eat.features.alphabet import BLANK, SYMBOLS, character_error_rate, encode, greedy_decode, normalise_text
from eat.features.config import AudioFeaturesConfig, FeatureParams, SpeechRecognizerConfig
from eat.features.recognizer import CTCBackend, save_recognizer
from eat.features.train_recognizer import TrainState, load_examples, new_state, train_recognizer, train_steps

TEXTS = ("she had your dark suit", "bob moved the big boat", "five wild foxes", "please bring the map",
         "we talk about every day", "so then people came up", "open the window wide", "mom made apple pie",
         "the choir sang", "my brother plays the bass")


def tiny_params(steps: int = 30, checkpoint_every: int = 10) -> FeatureParams:
    return FeatureParams(
        seed=7,
        signal=SignalConfig(fps=25.0, audio_rate=16000, image_size=32, n_mels=80, n_fft=2048, hop_length=640,
                            window_frames=11),
        audio_features=AudioFeaturesConfig(n_mfcc=13, speech_backend="ctc", speech_window=16,
                                           deepspeech_graph="missing/output_graph.pb", silence_dbfs=-60.0,
                                           max_clipped_fraction=0.001, workers=1),
        speech_recognizer=SpeechRecognizerConfig(
            n_mels=24, win_length=640, n_fft=1024, channels=32, conv_layers=2, kernel_size=5, rnn_hidden=32,
            rnn_layers=1, dropout=0.1, steps=steps, batch_size=4, lr=3e-3, speed_perturb=[1.0],
            checkpoint_every=checkpoint_every))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> pd.DataFrame:
    """Ten eSpeak utterances as normalised clips (PCM16, 16 kHz, whole 25 fps frames); 2 held out."""
    from eat.synth.speech import synthesize

    folder = tmp_path_factory.mktemp("speech")
    rows = []
    for i, text in enumerate(TEXTS):
        samples = synthesize(text, "en-us+m3" if i % 2 else "en-us+f2").resample(16000).samples
        n_frames = len(samples) // 640
        path = folder / f"u{i}.wav"
        sf.write(path, samples[: n_frames * 640], 16000, subtype="PCM_16")
        rows.append({"uid": f"u{i}", "clip_id": f"T/u{i}", "dataset": "MEAD", "split": "test" if i >= 8 else "train",
                     "text": text, "n_frames": n_frames, "audio_norm": str(path)})
    table = pd.DataFrame(rows)
    table.to_parquet(folder / "normalised.parquet")
    return table


def test_alphabet_is_deepspeechs():
    assert len(SYMBOLS) == 29 and SYMBOLS[0] == " " and SYMBOLS[1] == "a" and SYMBOLS[26] == "z"
    assert SYMBOLS[27] == "'" and BLANK == 28
    assert normalise_text("She had, your DARK-suit!") == "she had your dark suit"
    assert encode("Ab c'").tolist() == [1, 2, 0, 3, 27]


def test_greedy_decode_merges_repeats_and_drops_blanks():
    path = "hh_ee_ll_llo__ o_"  # "_" = blank: repeated l separated by a blank stays double
    ids = [BLANK if ch == "_" else SYMBOLS.index(ch) for ch in path]
    logits = np.full((len(ids), 29), -5.0)
    logits[np.arange(len(ids)), ids] = 3.0
    assert greedy_decode(logits) == "hello o"


def test_character_error_rate_known_answers():
    assert character_error_rate(["abc"], ["abd"]) == pytest.approx(1 / 3)
    assert character_error_rate(["abc"], ["abc"]) == 0.0
    assert character_error_rate(["abc"], [""]) == 1.0
    assert character_error_rate(["ab", "cd"], ["ab", "xcd"]) == pytest.approx(1 / 4)  # corpus-level
    with pytest.raises(ValueError):
        character_error_rate([""], ["a"])


def test_training_decreases_the_loss(clips):
    params = tiny_params(steps=40)
    train, _ = load_examples(clips[clips.split == "train"], params, augment=False)
    state = new_state(params)
    train_steps(state, train, params, params.speech_recognizer.steps)
    first, last = np.mean(state.losses[:5]), np.mean(state.losses[-5:])
    assert last < 0.7 * first, (first, last)


def test_resumed_training_equals_uninterrupted(clips, tmp_path):
    params = tiny_params(steps=12, checkpoint_every=6)
    train, _ = load_examples(clips[clips.split == "train"], params, augment=False)
    straight = new_state(params)
    train_steps(straight, train, params, 12)

    killed = new_state(params)
    train_steps(killed, train, params, 6, checkpoint=lambda s: s.save(tmp_path / "state.pt", "d"))
    resumed: TrainState = new_state(params)
    assert resumed.restore(tmp_path / "state.pt", "d") and resumed.step == 6
    assert not new_state(params).restore(tmp_path / "state.pt", "other digest")
    train_steps(resumed, train, params, 12)

    assert resumed.losses == straight.losses
    for a, b in zip(resumed.model.state_dict().values(), straight.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    cfg = params.speech_recognizer
    save_recognizer(straight.model, cfg, 16000, 320, tmp_path / "straight.pt")
    save_recognizer(resumed.model, cfg, 16000, 320, tmp_path / "resumed.pt")
    assert (tmp_path / "straight.pt").read_bytes() == (tmp_path / "resumed.pt").read_bytes()


def test_stage_writes_model_and_labelled_metrics(clips, tmp_path):
    normalised = Path(clips.audio_norm[0]).parent / "normalised.parquet"
    metrics = train_recognizer(tiny_params(steps=8), normalised, tmp_path / "rec", tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert metrics["substitute"] is True and metrics["backend"] == "ctc"
    assert metrics["train_clips"] == 8 and metrics["heldout_clips"] == 2 and 0 <= metrics["heldout_cer"]
    backend = CTCBackend.open(tmp_path / "rec" / "model.pt")
    assert backend.logits(np.zeros(640 * 5, np.float32)).shape == (10, 29)
