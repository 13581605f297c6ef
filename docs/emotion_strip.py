"""The README's strip: one real photo (scikit-image's astronaut) speaking one synthesised sentence in each of the
eight emotions, made with ``eat generate``'s library path and the pipeline's trained ``eat`` model.

    python docs/emotion_strip.py [--checkpoint models/adaptation/eat/model.pt] [--out docs/img/emotions.png]

Writes the eight mp4s under ``--videos`` (with sound) and a PNG: one row per emotion, a few frames per row.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf
from skimage.data import astronaut

from eat.config import EMOTIONS, load_params
from eat.generate.pipeline import Generator, Request, generate
from eat.paths import EAT_MODEL
from eat.synth.speech import synthesize

SENTENCE = "She had your dark suit in greasy wash water all year."


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=EAT_MODEL)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--videos", default="reports/generate/emotions")
    parser.add_argument("--out", default="docs/img/emotions.png")
    parser.add_argument("--frames", type=int, default=5, help="frames shown per emotion")
    parser.add_argument("--size", type=int, default=96, help="pixels per frame in the strip")
    args = parser.parse_args()

    videos = Path(args.videos)
    videos.mkdir(parents=True, exist_ok=True)
    generator = Generator(load_params(args.params), args.checkpoint)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        image, audio = Path(tmp) / "astronaut.png", Path(tmp) / "speech.wav"
        cv2.imwrite(str(image), cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR))
        speech = synthesize(SENTENCE)
        sf.write(audio, speech.samples, speech.sample_rate)
        for emotion in EMOTIONS:
            result = generate(generator, Request(str(image), str(audio), str(videos / f"{emotion}.mp4"),
                                                 {emotion: 1.0}), keep_frames=True)
            picks = np.linspace(0, len(result.frames) - 1, args.frames + 2).round().astype(int)[1:-1]
            row = [cv2.resize(result.frames[i], (args.size, args.size), interpolation=cv2.INTER_AREA) for i in picks]
            rows.append(label(np.concatenate(row, axis=1), emotion))
            print(f"{emotion}: {result.n_frames} frames, {result.frames_per_second:.1f} frames/s -> {result.output}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    print(f"strip -> {args.out}")


if __name__ == "__main__":
    main()
