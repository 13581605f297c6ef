"""Files the pipeline writes are the same bytes on every x86-64 CPU (docs/determinism.md).

Known answers: a fixed clip's H.264 video and AAC audio, as written by :mod:`eat.io.media`. The digests were
taken on an AVX512-BF16 AMD EPYC; the same digests on any other CPU kind (AVX2-only AMD, AMX Intel) show that
nothing in the encoding depends on the CPU's SIMD. A change of the bundled ffmpeg (imageio-ffmpeg's pin in
constraints.txt) may change them: then take the new digests and say so.
"""

from __future__ import annotations

import hashlib

import numpy as np

from eat.io import media
from eat.io.media import PORTABLE, write_audio, write_video


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _frames() -> list[np.ndarray]:
    yy, xx = np.mgrid[0:96, 0:128]
    return [np.stack([(xx * 2 + t * 7) % 256, (yy * 2 + t * 3) % 256, (xx + yy + t * 11) % 256], -1).astype(np.uint8)
            for t in range(12)]


def test_video_and_audio_bytes_are_the_known_answers(tmp_path):
    samples = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    write_video(tmp_path / "v.mp4", _frames(), 25.0, 128, 96, 18)
    write_audio(tmp_path / "a.m4a", samples, 16000)
    write_audio(tmp_path / "b.m4a", np.repeat(samples, 3), 48000)
    assert PORTABLE == ["-cpuflags", "0"]
    assert _md5(tmp_path / "v.mp4") == "a99ea6c6c02e6597c54f2618c8af7f39"
    assert _md5(tmp_path / "a.m4a") == "5273168f287ff4c8e1c1d4e2e578e48c"
    assert _md5(tmp_path / "b.m4a") == "0e9ef983284d23720c1c895835b430c1"


def test_x264_gets_the_same_instruction_sets_on_every_supported_cpu(monkeypatch):
    # libx264 detects the CPU itself (ffmpeg's -cpuflags does not reach it), and its AVX512 code writes other bytes
    # than its AVX2 code for some clips: the pin makes an AVX512 or AMX machine encode as an AVX2-only one does.
    for kind in ("AVX2", "AVX512", "AVX512-BF16", "AMX"):
        monkeypatch.setattr(media, "cpu_kind", lambda kind=kind: kind)
        args = media.x264_args("medium", 18, "yuv420p")
        assert args[args.index("-x264-params") + 1] == f"asm={media.X264_CPU}" and "AVX512" not in media.X264_CPU
    monkeypatch.setattr(media, "cpu_kind", lambda: "other")       # no AVX2: x264 must not be told to use it
    assert "-x264-params" not in media.x264_args("medium", 18, "yuv420p")
