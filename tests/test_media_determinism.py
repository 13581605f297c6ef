"""Files the pipeline writes are the same bytes on every x86-64 CPU (docs/determinism.md).

Known answers: a fixed clip's H.264 video and AAC audio, as written by :mod:`eat.io.media`. The audio digests were
taken on an AVX512-BF16 AMD EPYC, the video's there too (since x264's macroblock tree is off); the
same digests on any other CPU kind (AVX2-only AMD, AMX Intel, AVX512-BF16 AMD) show that nothing in the encoding
depends on the CPU's SIMD. A change of the bundled ffmpeg (imageio-ffmpeg's pin in
constraints.txt) may change them: then take the new digests and say so.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from eat.config import load_params
from eat.io import media
from eat.io.media import PORTABLE, rgb_to_i420, write_audio, write_video
from eat.machine import cpu_kind
from eat.synth.clip import render_clip
from eat.synth.generate import plan_clips
from tests.conftest import REPO


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
    assert _md5(tmp_path / "v.mp4") == "05e90966b4ab14b786afeb6982653caf"
    assert _md5(tmp_path / "a.m4a") == "5273168f287ff4c8e1c1d4e2e578e48c"
    assert _md5(tmp_path / "b.m4a") == "0e9ef983284d23720c1c895835b430c1"


def _i420_reference(frame: np.ndarray) -> bytes:
    """BT.601 limited-range 4:2:0 in 20-bit fixed point, chroma from each 2×2 block's rounded mean: plain integers."""
    r, g, b = (frame[..., i].astype(np.int64) for i in range(3))
    half, shift = 1 << 19, 20
    y = (269484 * r + 528482 * g + 102760 * b + (16 << shift) + half) >> shift
    h, w = y.shape
    r, g, b = ((c.reshape(h // 2, 2, w // 2, 2).sum((1, 3)) + 2) >> 2 for c in (r, g, b))
    u = (-155188 * r - 305135 * g + 460324 * b + (128 << shift) + half) >> shift
    v = (460324 * r - 385875 * g - 74448 * b + (128 << shift) + half) >> shift
    return np.concatenate([p.ravel() for p in (y, u, v)]).astype(np.uint8).tobytes()


def test_rgb_to_yuv420_is_the_integer_reference_on_this_cpu_and_without_opencvs_simd():
    # the synth videos' YUV comes from OpenCV (eat.io.media.rgb_to_i420); equal to a formula of integers here means
    # equal on every machine where this passes; the subprocess runs OpenCV's baseline code, its SIMD dispatch off
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((360, 640), (96, 128), (2, 2), (64, 66))]
    assert all(rgb_to_i420(f) == _i420_reference(f) for f in frames)
    code = ("import numpy as np, hashlib; from eat.io.media import rgb_to_i420; "
            "f = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8); "
            "print(hashlib.md5(rgb_to_i420(f)).hexdigest())")
    env = {**os.environ, "OPENCV_CPU_DISABLE": "AVX512_SKX,AVX512_ICL,AVX2,FMA3,AVX,SSE4_2,SSE4_1,POPCNT,SSSE3"}
    baseline = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert baseline.stdout.strip() == hashlib.md5(_i420_reference(frames[0])).hexdigest()


def test_x264_gets_the_same_instruction_sets_and_no_macroblock_tree_on_every_cpu(monkeypatch):
    # libx264 detects the CPU itself (ffmpeg's -cpuflags does not reach it): the pin makes an AVX512 or AMX machine
    # run the code an AVX2-only one runs; mbtree=0 on every CPU, pinned or not.
    for kind in ("AVX2", "AVX512", "AVX512-BF16", "AMX"):
        monkeypatch.setattr(media, "cpu_kind", lambda kind=kind: kind)
        args = media.x264_args("medium", 18, "yuv420p")
        assert args[args.index("-x264-params") + 1] == f"asm={media.X264_CPU}:mbtree=0"
    assert "AVX512" not in media.X264_CPU
    monkeypatch.setattr(media, "cpu_kind", lambda: "other")       # no AVX2: x264 must not be told to use it
    args = media.x264_args("medium", 18, "yuv420p")
    assert args[args.index("-x264-params") + 1] == "mbtree=0"


def _h264(frames: np.ndarray, x264_params: str) -> str:
    """MD5 of the H.264 stream of ``frames`` encoded with the project's :func:`~eat.io.media.x264_args` at the synth
    stage's settings (veryfast, crf 18), its ``-x264-params`` replaced by ``x264_params``."""
    h, w = frames.shape[1:3]
    args = media.x264_args("veryfast", 18, "yuv420p")
    args[args.index("-x264-params") + 1] = x264_params
    cmd = [media.ffmpeg_exe(), "-v", "error", *PORTABLE, "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", "25", "-i", "pipe:0", *args, "-fflags", "+bitexact", "-flags:v", "+bitexact", "-f", "h264", "pipe:1"]
    return hashlib.md5(subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=True).stdout).hexdigest()


@pytest.mark.skipif(cpu_kind() not in {"AVX512", "AVX512-BF16", "AMX"}, reason="needs x264's AVX512 code")
def test_x264s_avx512_and_avx2_code_write_the_same_bytes_without_the_macroblock_tree():
    # The first MEAD clip of the default plan is one whose bytes the tree's float division makes differ between the
    # two code paths (an rcpps estimate in the AVX2 code, an exact division in the AVX512 code); an AMD and an Intel
    # CPU can differ the same way under the pinned AVX2 sets. Without the tree both paths agree.
    params = load_params(REPO / "params.yaml")
    spec = next(s for s in plan_clips(params) if s.dataset == "MEAD")
    frames = np.stack(render_clip(spec, params.seed).frames)
    avx2 = f"asm={media.X264_CPU}"
    assert _h264(frames, "mbtree=1") != _h264(frames, f"{avx2}:mbtree=1"), (
        f"{spec.clip_id} no longer tells the two code paths apart: pick a clip that does")
    assert _h264(frames, media.X264_OPTIONS) == _h264(frames, f"{avx2}:{media.X264_OPTIONS}")
