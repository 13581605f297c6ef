"""The audio_features stage: frame alignment of mel/MFCC, speech windows, quarantine, resume, determinism."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from eat.config import SignalConfig
from eat.features.config import AudioFeaturesConfig, FeatureParams, SpeechRecognizerConfig
from eat.features.deepspeech import DeepSpeechBackend, deepspeech_input
from eat.features.extract import extract_audio_features
from eat.features.recognizer import CTCRecognizer, save_recognizer
from eat.features.spectral import log_mel, mel_filterbank, mel_power, mfcc
from eat.features.speech import SpeechBackendUnavailable, make_backend, speech_windows

RATE, HOP = 16000, 640


def params(backend: str = "ctc", graph: str = "weights/none.pb") -> FeatureParams:
    return FeatureParams(
        seed=1,
        signal=SignalConfig(fps=25.0, audio_rate=RATE, image_size=32, n_mels=80, n_fft=2048, hop_length=HOP,
                            window_frames=11),
        audio_features=AudioFeaturesConfig(n_mfcc=13, speech_backend=backend, speech_window=16, deepspeech_graph=graph,
                                           silence_dbfs=-60.0, max_clipped_fraction=0.001, workers=1),
        speech_recognizer=SpeechRecognizerConfig(
            n_mels=24, win_length=640, n_fft=1024, channels=16, conv_layers=1, kernel_size=3, rnn_hidden=16,
            rnn_layers=1, dropout=0.0, steps=1, batch_size=1, lr=1e-3, speed_perturb=[1.0],
            checkpoint_every=1))


def paper_mel(samples: np.ndarray) -> np.ndarray:
    return log_mel(mel_power(samples, RATE, HOP, HOP, 2048, 80))


@pytest.mark.parametrize("n_frames", [1, 2, 7, 29, 101])
def test_one_mel_frame_per_video_frame(n_frames):
    samples = np.random.default_rng(n_frames).uniform(-0.3, 0.3, n_frames * HOP).astype(np.float32)
    assert paper_mel(samples).shape == (n_frames, 80)
    assert mfcc(mel_power(samples, RATE, HOP, HOP, 2048, 80), 13).shape == (n_frames, 13)
    with pytest.raises(ValueError, match="whole number"):
        paper_mel(samples[:-1])


def test_tone_burst_in_video_frame_k_is_in_mel_frame_k():
    n_frames, k = 12, 5
    samples = np.zeros(n_frames * HOP, np.float32)
    t = np.arange(HOP) / RATE
    samples[k * HOP:(k + 1) * HOP] = 0.5 * np.sin(2 * np.pi * 1000 * t)
    mel = paper_mel(samples)
    assert mel.sum(axis=1).argmax() == k
    silent = np.delete(mel, k, axis=0)
    np.testing.assert_allclose(silent, np.log(1e-5), rtol=1e-6)   # windows do not overlap: nothing leaks
    assert mel[k].max() > 0


def test_mel_and_mfcc_match_librosa_on_the_same_framing():
    import librosa

    samples = np.random.default_rng(0).normal(0, 0.1, 20 * HOP).astype(np.float32)
    # frame i = samples [640 i, 640 (i+1)): librosa without centring, window centred in 2048 → pad 704 each side
    padded = np.pad(samples, (2048 - HOP) // 2)
    ref = librosa.feature.melspectrogram(y=padded, sr=RATE, n_fft=2048, hop_length=HOP, win_length=HOP,
                                         window="hann", center=False, power=2.0, n_mels=80, htk=True, norm=None)
    np.testing.assert_allclose(paper_mel(samples), np.log(1e-5 + ref.T), atol=1e-4)
    np.testing.assert_allclose(mel_filterbank(RATE, 2048, 80),
                               librosa.filters.mel(sr=RATE, n_fft=2048, n_mels=80, htk=True, norm=None), atol=1e-6)
    ref_mfcc = librosa.feature.mfcc(S=librosa.power_to_db(ref, top_db=None), n_mfcc=13).T
    np.testing.assert_allclose(mfcc(mel_power(samples, RATE, HOP, HOP, 2048, 80), 13), ref_mfcc, atol=1e-3)


def test_speech_window_of_frame_i_is_the_16_steps_around_step_2i():
    n_frames = 9
    logits = np.repeat(np.arange(1, 2 * n_frames + 1, dtype=np.float32)[:, None], 29, axis=1)  # step j → j + 1
    windows = speech_windows(logits, n_frames, 16, 2)
    assert windows.shape == (n_frames, 16, 29)
    for i in range(n_frames):
        steps = np.arange(2 * i - 7, 2 * i + 9)        # centred on frame i's steps 2i, 2i + 1
        expected = np.where((steps >= 0) & (steps < 2 * n_frames), steps + 1, 0)
        np.testing.assert_array_equal(windows[i, :, 3], expected)
    with pytest.raises(ValueError):
        speech_windows(logits[:-1], n_frames, 16, 2)


def test_deepspeech_front_end_gives_50_fps_context_windows():
    samples = np.random.default_rng(1).normal(0, 0.1, 10 * HOP).astype(np.float32)
    inputs = deepspeech_input(samples)
    assert inputs.shape == (20, 494)                  # 2 steps per 25 fps frame, 19 × 26 per step
    assert abs(inputs.mean()) < 1e-5 and abs(inputs.std() - 1) < 1e-4
    np.testing.assert_array_equal(inputs[0, : 9 * 26], inputs[0, 0])   # zero context before the clip


def test_deepspeech_backend_names_the_missing_file_and_the_alternative(tmp_path):
    graph = tmp_path / "output_graph.pb"
    with pytest.raises(SpeechBackendUnavailable) as err:
        make_backend(params("deepspeech", str(graph)), tmp_path / "unused.pt")
    assert str(graph) in str(err.value) and "speech_backend: ctc" in str(err.value)
    graph.write_bytes(b"not a graph")
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        with pytest.raises(SpeechBackendUnavailable, match=r"TensorFlow is not installed.*\[deepspeech\]"):
            DeepSpeechBackend.open(graph)


# --- the stage on a small table ------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    """Four speech clips plus a silent, a clipped and a wrong-length one, and an (untrained) recogniser."""
    from eat.synth.speech import synthesize

    folder = tmp_path_factory.mktemp("audio_features")
    rows = []

    def add(uid: str, samples: np.ndarray, n_frames: int) -> None:
        sf.write(folder / f"{uid}.wav", samples, RATE, subtype="PCM_16")
        rows.append({"uid": uid, "clip_id": f"T/{uid}", "dataset": "LRW", "split": "train", "text": "",
                     "n_frames": n_frames, "audio_norm": str(folder / f"{uid}.wav")})

    for i, text in enumerate(("about", "because", "moment", "people")):
        speech = synthesize(f"we talk {text} every day").resample(RATE).samples
        n = len(speech) // HOP
        add(f"speech{i}", speech[: n * HOP], n)
    add("silent", np.zeros(10 * HOP, np.float32), 10)
    add("clipped", np.sign(np.sin(np.linspace(0, 60, 10 * HOP))).astype(np.float32), 10)
    add("short", 0.1 * np.ones(10 * HOP - 5, np.float32), 10)
    table = pd.DataFrame(rows)
    table.to_parquet(folder / "normalised.parquet")
    torch.manual_seed(0)
    cfg = params().speech_recognizer
    save_recognizer(CTCRecognizer(cfg).eval(), cfg, RATE, 320, folder / "model.pt")
    return folder, folder / "model.pt", table


def run(dataset, out: Path, table: pd.DataFrame | None = None) -> dict:
    folder, model, full = dataset
    normalised = out / "normalised.parquet"
    out.mkdir(parents=True, exist_ok=True)
    (full if table is None else table).to_parquet(normalised)
    return extract_audio_features(params(), normalised, out / "audio", out / "audio.parquet",
                                  out / "quarantine.parquet", model)


def test_stage_outputs_and_quarantine(dataset, tmp_path):
    summary = run(dataset, tmp_path)
    assert (summary["clips"], summary["quarantined"], summary["computed"]) == (4, 3, 4)
    index = pd.read_parquet(tmp_path / "audio.parquet")
    for row in index.itertuples():
        with np.load(row.features) as npz:
            assert npz["mel"].shape == (row.n_frames, 80) and npz["mel"].dtype == np.float32
            assert npz["mfcc"].shape == (row.n_frames, 13)
            assert npz["speech"].shape == (row.n_frames, 16, 29)
    reasons = pd.read_parquet(tmp_path / "quarantine.parquet").set_index("clip_id").reason
    assert reasons["T/silent"].startswith("silent audio")
    assert reasons["T/clipped"].startswith("clipped audio")
    assert reasons["T/short"] == "wrong length: 6395 samples, expected n_frames × hop = 10 × 640 = 6400"
    assert sorted(p.name for p in (tmp_path / "audio").iterdir()) == sorted(
        f"speech{i}.{ext}" for i in range(4) for ext in ("npz", "key"))


def test_rerun_after_a_kill_recomputes_only_the_missing_clips(dataset, tmp_path):
    _, _, table = dataset
    first = run(dataset, tmp_path, table.iloc[:2])          # "killed" after two clips
    assert first["computed"] == 2
    done = {p: p.stat().st_mtime_ns for p in (tmp_path / "audio").glob("*.npz")}
    (tmp_path / "audio" / "speech1.key").unlink()           # killed between the npz and its key
    (tmp_path / "audio" / ".speech2.npz.999.partial").write_bytes(b"half")   # killed while writing
    second = run(dataset, tmp_path)
    assert (second["computed"], second["reused"]) == (3, 1)
    assert os.stat(tmp_path / "audio" / "speech0.npz").st_mtime_ns == done[tmp_path / "audio" / "speech0.npz"]
    assert not (tmp_path / "audio" / ".speech2.npz.999.partial").exists()
    assert run(dataset, tmp_path)["computed"] == 0


def test_feature_files_are_byte_identical_across_runs(dataset, tmp_path):
    run(dataset, tmp_path / "a")
    run(dataset, tmp_path / "b")
    for npz in (tmp_path / "a" / "audio").glob("*.npz"):
        assert npz.read_bytes() == (tmp_path / "b" / "audio" / npz.name).read_bytes()
