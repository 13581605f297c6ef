"""The audio_features stage: frame alignment of mel/MFCC, speech windows, quarantine, resume, determinism."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from eat.config import RayConfig, SignalConfig
from eat.features.config import AudioFeaturesConfig, FeatureParams, SpeechRecognizerConfig
from eat.features.deepspeech import DeepSpeechBackend, deepspeech_input
from eat.features.extract import extract_audio_features
from eat.features.recognizer import CTCRecognizer, save_recognizer
from eat.features.spectral import log_mel, mel_power, mfcc
from eat.features.speech import make_backend, speech_windows
from eat.features.speech_backend import SpeechBackendUnavailable

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
            num_workers=1, threads_per_worker=1, checkpoint_every=1, log_every=1),
        ray=RayConfig(address="local", workers=1))


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


def test_framing_needs_a_window_it_can_centre():
    samples = np.zeros(4 * HOP, np.float32)
    for win, n_fft, reason in ((HOP - 2, 2048, ">= hop"), (HOP + 1, 2048, "even number"), (HOP, HOP - 2, "shorter")):
        with pytest.raises(ValueError, match=reason):
            mel_power(samples, RATE, HOP, win, n_fft, 80)


def known_answer_signal() -> np.ndarray:
    """12 video frames: a 100 Hz → 3.9 kHz chirp, a 1 kHz burst across a frame boundary and three clicks."""
    n = np.arange(12 * HOP)
    t = n / RATE
    x = 0.3 * np.sin(2 * np.pi * (100 * t + 4000 * t ** 2))
    x += np.where((n >= 2300) & (n < 3100), 0.2 * np.sin(2 * np.pi * 1000 * t), 0.0)
    x[[1000, 4321, 6000]] += 0.8
    return x.astype(np.float32)


@pytest.mark.parametrize("name, hop, win, n_fft, n_mels", [("paper", HOP, HOP, 2048, 80),
                                                           ("overlap", 320, 400, 512, 20)])
def test_mel_and_mfcc_known_answer(name, hop, win, n_fft, n_mels):
    """Stored values (tests/data/spectral_known_answer.npz): a float64 numpy evaluation of the definitions in
    :mod:`eat.features.spectral`'s docstring (each frame sliced by hand, periodic Hann, |rfft|², HTK triangles from
    their formula, ``ln(1e-5 + M)``, orthonormal DCT-II of ``10 log10(max(M, 1e-10))``), written once when librosa
    replaced the hand-written code. A one-sample shift of the framing, another window or filterbank fails it."""
    expected = np.load(Path(__file__).parent / "data" / "spectral_known_answer.npz")
    power = mel_power(known_answer_signal(), RATE, hop, win, n_fft, n_mels)
    np.testing.assert_allclose(log_mel(power), expected[f"{name}_log_mel"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(mfcc(power, 13), expected[f"{name}_mfcc"], rtol=0, atol=1e-3)


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
