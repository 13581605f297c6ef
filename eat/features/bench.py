"""``make bench`` entry for the audio features: frames per second of mel + MFCC and of the speech features.

Register in :mod:`eat.bench` as ``BENCHMARKS["audio_features"] = bench_audio_features``. Runs on
the embedded synthetic clips (``data/synth``, decoded to 16 kHz and cut to whole 25 fps frames),
in-process on one core (the stage's per-task setting); the recogniser is the trained
``models/speech_recognizer/model.pt`` if present, else an untrained one of the configured size
(same speed).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from eat.features.config import load_feature_params
from eat.features.extract import clip_features
from eat.features.recognizer import CTCBackend, CTCRecognizer, save_recognizer
from eat.features.spectral import log_mel, mel_power, mfcc
from eat.io.media import read_audio
from eat.paths import SPEECH_RECOGNIZER_MODEL, SYNTH

_CLIPS = 24


def bench_audio_features(params_path: str, synth: Path | str = SYNTH,
                         recognizer: Path | str = SPEECH_RECOGNIZER_MODEL) -> dict:
    params = load_feature_params(params_path)
    sig, hop = params.signal, params.signal.hop_length
    table = pd.read_parquet(Path(synth) / "groundtruth" / "clips.parquet")
    picked = table.iloc[np.linspace(0, len(table) - 1, min(_CLIPS, len(table))).astype(int)]
    clips = []
    for row in picked.itertuples():
        samples = read_audio(Path(synth) / row.dataset / row.audio, rate=sig.audio_rate)[0]
        clips.append(samples[: len(samples) // hop * hop])
    frames = sum(len(c) // hop for c in clips)
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(recognizer)
        if not model.is_file():
            model = Path(tmp) / "untrained.pt"
            save_recognizer(CTCRecognizer(params.speech_recognizer), params.speech_recognizer, sig.audio_rate,
                            params.speech_hop, model)
        backend = CTCBackend.open(model)
        clip_features(clips[0], len(clips[0]) // hop, params, backend)      # warm-up: model load
        t0 = time.perf_counter()
        for c in clips:
            power = mel_power(c, sig.audio_rate, hop, hop, sig.n_fft, sig.n_mels)
            log_mel(power), mfcc(power, params.audio_features.n_mfcc)
        t1 = time.perf_counter()
        for c in clips:
            clip_features(c, len(c) // hop, params, backend)
        t2 = time.perf_counter()
    return {"clips": len(clips), "frames": frames, "trained_recognizer": Path(recognizer).is_file(),
            "mel_mfcc_fps": round(frames / (t1 - t0), 1), "all_features_fps": round(frames / (t2 - t1), 1)}
