"""``make bench generate``: frames/s of ``eat generate`` on a 10 s clip, with the time split by phase.

The clip: skimage's astronaut photo and 10 s of eSpeak speech (eat/synth/speech.py). The model: the trained
``models/adaptation/eat/model.pt`` when ``make repro`` has made it, else seeded random weights at the same
profile (eat/generate/random_models.py) — the cost of every phase does not depend on what the weights learned.
CPU: with 1 and with 2 torch threads (on a shared machine one thread is often faster: no spinning OpenMP
barriers); GPU (when torch sees one): the default profile and the paper profile at 256², the issue's real-time
target (≥ 25 frames/s). A 1 s warm-up clip runs first (model loading and first-call kernel selection excluded).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
import torch

from eat.config import Params, deep_merge, parse_params, read_yaml
from eat.generate.pipeline import Generator, generate, make_request
from eat.generate.random_models import write_random_models
from eat.paths import EAT_MODEL, PAPER_PROFILE, SPEECH_RECOGNIZER_MODEL
from eat.synth.speech import synthesize

CLIP_SECONDS = 10.0
TEXT = ("The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. "
        "How much wood would a woodchuck chuck if a woodchuck could chuck wood?")


def _inputs(folder: Path) -> tuple[str, dict[str, str]]:
    import skimage.data  # local: only the sample portrait needs scikit-image's data module (and pooch behind it)

    image = folder / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    speech = synthesize(TEXT)
    n = int(CLIP_SECONDS * speech.sample_rate)
    samples = np.resize(speech.samples.astype(np.float32), n)          # repeated to exactly 10 s
    audio = {}
    for name, seconds in (("warmup", 1.0), ("clip", CLIP_SECONDS)):
        audio[name] = str(folder / f"{name}.wav")
        sf.write(audio[name], samples[:int(seconds * speech.sample_rate)], speech.sample_rate)
    return str(image), audio


def _run(params: Params, checkpoint: Path, recognizer: Path, image: str, audio: dict[str, str], folder: Path,
         device: str, batch_size: int) -> dict:
    generator = Generator(params, checkpoint, recognizer=recognizer, device=device, batch_size=batch_size)
    generate(generator, make_request(image, audio["warmup"], str(folder / "warmup.mp4"), {"happy": 1.0}))
    if device == "cuda":
        torch.cuda.synchronize()
    result = generate(generator, make_request(image, audio["clip"], str(folder / "clip.mp4"), {"happy": 1.0}))
    return {"frames": result.n_frames, "frames_per_second": round(result.frames_per_second, 2),
            "seconds": result.seconds, "seconds_total": round(sum(result.seconds.values()), 2),
            "real_time_factor": round(result.frames_per_second / params.signal.fps, 3), "batch_size": batch_size}


def _models(params: Params, folder: Path) -> tuple[Path, Path, str]:
    trained, recognizer = EAT_MODEL, SPEECH_RECOGNIZER_MODEL
    paths = None
    if not trained.is_file() or not recognizer.is_file():
        paths = write_random_models(params, folder / "models")
    return (trained if trained.is_file() else paths["adaptation"],
            recognizer if recognizer.is_file() else paths["recognizer"],
            "trained" if trained.is_file() else "random (no trained checkpoint here; speed does not depend on it)")


def bench_generate(params_path: str) -> dict:
    params = parse_params(read_yaml(params_path))
    threads = torch.get_num_threads()
    out: dict = {"clip_seconds": CLIP_SECONDS, "image_size": params.signal.image_size}
    with tempfile.TemporaryDirectory(prefix="eat-bench-generate-") as tmp:
        folder = Path(tmp)
        image, audio = _inputs(folder)
        checkpoint, recognizer, weights = _models(params, folder)
        out["weights"] = weights
        for n in (1, 2):
            torch.set_num_threads(n)
            out[f"cpu_threads_{n}"] = _run(params, checkpoint, recognizer, image, audio, folder, "cpu", 8)
        torch.set_num_threads(threads)
        if torch.cuda.is_available():
            out["gpu"] = _run(params, checkpoint, recognizer, image, audio, folder, "cuda", 32)
            paper = parse_params(deep_merge(read_yaml(params_path), read_yaml(PAPER_PROFILE)))
            paths = write_random_models(paper, folder / "paper_models")
            out["gpu_paper_256"] = {**_run(paper, paths["adaptation"], paths["recognizer"], image, audio, folder,
                                           "cuda", 32), "weights": "random (paper profile)"}
    return out
