"""The ctc speech backend: alphabet, greedy CTC decoding, CER, and that training learns and resumes exactly."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from eat.config import RayConfig, SignalConfig
from eat.features.alphabet import BLANK, SYMBOLS, character_error_rate, encode, greedy_decode, normalise_text
from eat.features.config import AudioFeaturesConfig, FeatureParams, SpeechRecognizerConfig
from eat.features.recognizer import CTCBackend
from tests.conftest import REPO

TEXTS = ("she had your dark suit", "bob moved the big boat", "five wild foxes", "please bring the map",
         "we talk about every day", "so then people came up", "open the window wide", "mom made apple pie",
         "the choir sang", "my brother plays the bass")


def tiny_params(steps: int = 30, checkpoint_every: int = 10, num_workers: int = 1, dropout: float = 0.1
                ) -> FeatureParams:
    return FeatureParams(
        seed=7,
        signal=SignalConfig(fps=25.0, audio_rate=16000, image_size=32, n_mels=80, n_fft=2048, hop_length=640,
                            window_frames=11),
        audio_features=AudioFeaturesConfig(n_mfcc=13, speech_backend="ctc", speech_window=16,
                                           deepspeech_graph="missing/output_graph.pb", silence_dbfs=-60.0,
                                           max_clipped_fraction=0.001, workers=1),
        speech_recognizer=SpeechRecognizerConfig(
            n_mels=24, win_length=640, n_fft=1024, channels=32, conv_layers=2, kernel_size=5, rnn_hidden=32,
            rnn_layers=1, dropout=dropout, steps=steps, batch_size=4, lr=3e-3, speed_perturb=[1.0],
            num_workers=num_workers, threads_per_worker=1, checkpoint_every=checkpoint_every, log_every=2),
        ray=RayConfig(address="local", workers=2))


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


def _train(clips: pd.DataFrame, params: FeatureParams, out: Path, ray_head) -> dict:
    """The stage as DVC runs it, in a subprocess attached to the session's Ray head (as the other Ray Train stages'
    tests run theirs); returns its metrics."""
    normalised = Path(clips.audio_norm[0]).parent / "normalised.parquet"
    params_file = out / "params.yaml"
    out.mkdir(parents=True, exist_ok=True)
    params_file.write_text(yaml.safe_dump(params.model_dump()))
    proc = subprocess.run([sys.executable, "-m", "stages.train_speech_recognizer", "--params", str(params_file),
                           "--normalised", str(normalised), "--out", str(out / "rec"), "--metrics",
                           str(out / "metrics.json")], cwd=REPO, env={**os.environ, **ray_head.env},
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def test_stage_trains_on_two_workers_writes_a_labelled_model_and_resumes_to_the_uninterrupted_bytes(
        clips, tmp_path, ray_head):
    # Ray keeps the last two checkpoints: those of steps 20 and 40. Removing the last one and the model leaves the
    # folder as a run killed between them left it; the re-run must resume at 20 and end with the same bytes.
    params = tiny_params(steps=40, checkpoint_every=20, num_workers=2)
    straight = _train(clips, params, tmp_path, ray_head)
    assert len(pd.read_csv(tmp_path / "train_log.csv")) == 20
    assert straight["train_loss"] < 0.7 * straight["train_loss_first"], straight    # two data-parallel workers learn
    assert straight["substitute"] is True and straight["backend"] == "ctc"      # labelled as the stage's substitute
    assert straight["train_clips"] == 8 and straight["heldout_clips"] == 2 and 0 <= straight["heldout_cer"]
    model = tmp_path / "rec" / "model.pt"
    assert CTCBackend.open(model).logits(np.zeros(640 * 5, np.float32)).shape == (10, 29)
    uninterrupted, log = model.read_bytes(), (tmp_path / "train_log.csv").read_text()
    checkpoints = sorted((tmp_path / "rec" / "ray" / "recognizer").glob("checkpoint_*/state.pt"),
                         key=lambda p: torch.load(p, weights_only=True)["step"])
    assert [torch.load(p, weights_only=True)["step"] for p in checkpoints] == [20, 40]
    shutil.rmtree(checkpoints[-1].parent)
    model.unlink()

    resumed = _train(clips, params, tmp_path, ray_head)
    assert resumed["resumed_at_step"] == 20 and straight["resumed_at_step"] == 0
    assert model.read_bytes() == uninterrupted
    assert pd.read_csv(tmp_path / "train_log.csv").drop(columns="seconds_per_step").equals(
        pd.read_csv(io.StringIO(log)).drop(columns="seconds_per_step"))
    assert {**resumed, "resumed_at_step": 0, "seconds": None} == {**straight, "seconds": None}
