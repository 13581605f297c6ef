"""Encode (and decode) video and audio with the ffmpeg binary that ``imageio-ffmpeg`` ships.

No system ffmpeg is needed. Outputs are bit-exact (no encoder version or
timestamps in the container, one encoder thread), so the same frames and
samples give byte-identical files, which keeps DVC's content hashes stable.

Reading video: :func:`open_video` / :func:`read_video` decode through ffmpeg, which applies a stream's display
matrix (the ``rotate=90`` tag of phone videos; ffprobe's "Display Matrix: rotation of -90.00 degrees"), so
frames come out upright, as a player shows them, whatever the decoder library would do with the tag. The
``normalise`` stage re-encodes every clip through ffmpeg the same way, so the normalised videos the later
stages read are upright and carry no rotation.
"""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import soundfile as sf

from eat.io.atomic import atomic_path
from eat.machine import cpu_kind


class MediaError(ValueError):
    """A media file is missing, unreadable or not what a stage needs; the message names the file and why."""


_BITEXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]
# ffmpeg's plain-C code paths for everything it writes: its RGB → YUV conversion (libswscale, still used for yuv444p
# output; yuv420p frames arrive converted, see rgb_to_i420) and its AAC encoder give other bytes with SSE, AVX2/FMA or
# no SIMD at all, so files written on two kinds of CPU could differ.
# ffmpeg's -cpuflags does not reach libx264, which detects the CPU itself: see X264_CPU. docs/determinism.md.
PORTABLE = ["-cpuflags", "0"]

X264_CPU = "MMX2,SSE,SSE2,SSE3,SSSE3,SSE4.1,SSE4.2,AVX,LZCNT,BMI1,BMI2,FMA3,AVX2"
"""The instruction sets libx264 may use, the same on every machine that has them (AVX2, AVX512 and AMX kinds; x264
is as fast with them). With :data:`X264_OPTIONS` its AVX512 and AVX2 code write the same bytes anyway; the pin keeps
any other difference between its code paths out of the data."""

X264_OPTIONS = "mbtree=0"
"""No macroblock tree. x264's lookahead propagates costs in its one float SIMD routine (``mbtree_propagate_cost``):
the SSE2 … AVX2 versions divide by an ``rcpps`` estimate, whose low bits each CPU vendor rounds its own way, the
AVX512 version divides exactly. With the tree, an AVX512 and an AVX2-only machine wrote other bytes for 4-10 of 53
synthetic clips, and with the AVX2 sets pinned an AMD and an Intel machine still did (data/synth of 745c5b6: 255
bytes apart; ``rcpps`` is the one instruction on x264's path whose result is the vendor's own). Without it, x264's
AVX512 and AVX2 code write the same bytes for all 53 clips at the synth, normalise and crop_align settings
(docs/probes/cross_machine/x264_masks_sweep_avx512bf16_mbtree0.txt; docs/determinism.md)."""


def x264_args(preset: str, crf: int, pix_fmt: str) -> list[str]:
    """ffmpeg output options of every H.264 file the project writes: one thread, :data:`X264_OPTIONS` and
    :data:`X264_CPU`, so the bytes depend on neither the core count nor the CPU kind. A CPU without AVX2
    (``cpu_kind`` "other") keeps x264's own choice of instruction sets."""
    pinned = [f"asm={X264_CPU}"] if cpu_kind() in {"AVX2", "AVX512", "AVX512-BF16", "AMX"} else []
    return ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", pix_fmt, "-threads", "1",
            "-x264-params", ":".join([*pinned, X264_OPTIONS])]


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], target: Path, stdin_bytes: Iterable[bytes] | None = None) -> None:
    """Run the bundled ffmpeg; a failure raises naming ``target`` with ffmpeg's last error lines."""
    cmd = [ffmpeg_exe(), "-nostdin" if stdin_bytes is None else "-hide_banner", "-y", "-loglevel", "error",
           *PORTABLE, *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_bytes is not None else None,
                            stderr=subprocess.PIPE)
    try:
        if stdin_bytes is not None:
            assert proc.stdin is not None
            for chunk in stdin_bytes:
                proc.stdin.write(chunk)
            proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    except BaseException:
        proc.kill()     # the frames' producer failed: without this, wait() below waits for an stdin that never ends
        raise
    finally:
        code = proc.wait()
    if code != 0:
        raise MediaError(f"ffmpeg failed writing {target}: {err.strip()[-800:]}")


def _wav(samples: np.ndarray, rate: int, folder: str) -> str:
    path = str(Path(folder) / "audio.wav")
    sf.write(path, np.clip(samples, -1, 1), rate, subtype="PCM_16")
    return path


def rgb_to_i420(frame: np.ndarray) -> bytes:
    """An RGB uint8 frame (H, W, 3), H and W even, as planar YUV 4:2:0 (ffmpeg's ``yuv420p``): BT.601 limited range,
    each chroma sample from the mean colour of its 2×2 block.

    OpenCV does it with exact integer arithmetic: the 2×2 mean as ``(sum + 2) >> 2`` (``INTER_AREA`` at one half),
    then its RGB → I420 in 20-bit fixed point. tests/test_media_determinism.py checks the result against a NumPy
    reference of those integers, with OpenCV's SIMD on and off, so it is the same on every CPU; it is about twice as
    fast as libswscale's plain-C path (0.35 vs 0.60 s per 108-frame 640×360 clip with the encode), the one of ffmpeg's
    that is the same on every CPU."""
    h, w = frame.shape[:2]
    luma = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)[:h]
    block_mean = cv2.resize(frame, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    # OpenCV takes each chroma sample from a block's top-left pixel: blocks of one colour make that the mean
    chroma = cv2.cvtColor(block_mean.repeat(2, axis=0).repeat(2, axis=1), cv2.COLOR_RGB2YUV_I420)[h:]
    return luma.tobytes() + chroma.tobytes()


def write_video(path: Path | str, frames: Iterable[np.ndarray], fps: float, width: int, height: int, crf: int = 18,
                audio: tuple[np.ndarray, int] | None = None, pix_fmt: str = "yuv420p", preset: str = "medium") -> None:
    """Encode RGB uint8 frames (H, W, 3) as H.264 mp4 (``pix_fmt`` yuv420p or yuv444p), optionally with AAC audio.

    yuv420p frames are converted here (:func:`rgb_to_i420`, even sizes only); yuv444p ones by ffmpeg's plain-C
    libswscale (:data:`PORTABLE`)."""
    path = Path(path)
    if pix_fmt == "yuv420p" and (width % 2 or height % 2):
        raise ValueError(f"{path}: {width}x{height} cannot be stored as yuv420p (H.264 4:2:0 needs even sizes)")
    raw_format, to_bytes = ("yuv420p", rgb_to_i420) if pix_fmt == "yuv420p" else \
        ("rgb24", lambda frame: np.ascontiguousarray(frame).tobytes())
    with tempfile.TemporaryDirectory() as tmpdir, atomic_path(path) as tmp:
        args = ["-f", "rawvideo", "-pix_fmt", raw_format, "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "pipe:0"]
        if audio is not None:
            args += ["-i", _wav(audio[0], audio[1], tmpdir)]
        args += x264_args(preset, crf, pix_fmt)
        if audio is not None:
            args += ["-c:a", "aac", "-b:a", "128k", "-ar", str(audio[1])]
        args += [*_BITEXACT, "-f", "mp4", str(tmp)]

        def chunks() -> Iterable[bytes]:
            for frame in frames:
                if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                    raise ValueError(f"{path}: frame {frame.shape} {frame.dtype} is not ({height}, {width}, 3) uint8")
                yield to_bytes(np.ascontiguousarray(frame))

        run_ffmpeg(args, path, chunks())


def write_audio(path: Path | str, samples: np.ndarray, rate: int) -> None:
    """Encode mono float samples in [-1, 1] as AAC in an .m4a container."""
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmpdir, atomic_path(path) as tmp:
        run_ffmpeg(["-i", _wav(samples, rate, tmpdir), "-c:a", "aac", "-b:a", "128k", *_BITEXACT, "-f", "ipod",
                    str(tmp)], path)


def mux(video: Path | str, audio: Path | str, out: Path | str) -> None:
    """Copy a video stream and an audio stream into one mp4 (no re-encoding)."""
    with atomic_path(out) as tmp:
        run_ffmpeg(["-i", str(video), "-i", str(audio), "-map", "0:v", "-map", "1:a", "-c", "copy", "-shortest",
                    *_BITEXACT, "-f", "mp4", str(tmp)], Path(out))


def read_audio(path: Path | str, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any file ffmpeg reads to mono float32; resample if ``rate`` is set.

    Returns (samples, sample_rate). Unlike decord's reader this gives the exact
    stream length (no AAC frame padding) and reports the native rate.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: audio file not found")
    args = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-ac", "1"]
    if rate is not None:
        args += ["-ar", str(rate)]
    proc = subprocess.run([*args, "-f", "wav", "-c:a", "pcm_f32le", "pipe:1"], capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise MediaError(f"{path}: cannot decode audio: {proc.stderr.decode(errors='replace').strip()[-400:]}")
    samples, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return samples, int(sr)


_DISPLAY_ROTATION = re.compile(r"(?:Display Matrix|displaymatrix): rotation of (-?[\d.]+) degrees")
_VIDEO_SIZE = re.compile(r" (\d{1,5})x(\d{1,5})[, \[]")
_VIDEO_RATE = re.compile(r"([\d.]+) (?:fps|tbr)")


def media_summary(path: Path | str) -> str:
    """The stream summary ffmpeg prints for ``path`` (what ffprobe shows: streams, sizes, side data)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True,
                          text=True, errors="replace", check=False)
    return proc.stderr


def _first_video_stream(summary: str) -> list[str]:
    """The lines of the first video stream in a summary: its ``Stream #…: Video:`` line and what follows it."""
    lines = summary.splitlines()
    for i, line in enumerate(lines):
        if "Stream #" in line and ": Video: " in line:
            block = [line]
            for rest in lines[i + 1:]:
                if "Stream #" in rest or not rest.startswith("    "):
                    break
                block.append(rest)
            return block
    return []


def display_rotation(summary: str) -> float:
    """Degrees (counter-clockwise, ffmpeg's sign) a player turns the first video stream of a summary; 0 if none.

    A phone's ``rotate=90`` tag (turn clockwise) is ``-90`` here."""
    for line in _first_video_stream(summary)[1:]:
        found = _DISPLAY_ROTATION.search(line)
        if found:
            return float(found.group(1))
    return 0.0


def quarter_turn(rotation: float) -> bool:
    """Whether a display rotation swaps width and height (±90°, 270°)."""
    return abs((rotation % 180) - 90) < 1.0


@dataclass(frozen=True)
class VideoStream:
    """The first video stream of a file, read upright (module docstring). ``width`` × ``height``: as displayed."""

    path: str
    width: int
    height: int
    fps: float                 # 0 when the container does not say
    rotation: float            # the display rotation applied (0: none)

    def frames(self, limit: int | None = None) -> Iterator[np.ndarray]:
        """(height, width, 3) uint8 RGB frames in order, streamed (bounded memory); at most ``limit``.

        Stopping early (``break``, ``limit``) is fine; a decoding error that ends the stream raises
        :class:`MediaError`."""
        cmd = [ffmpeg_exe(), "-nostdin", "-v", "error", "-i", self.path, "-map", "0:v:0"]
        if limit is not None:
            cmd += ["-frames:v", str(int(limit))]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        size = self.width * self.height * 3
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
            assert proc.stdout is not None
            finished = False
            try:
                while True:
                    buf = proc.stdout.read(size)
                    if not buf:
                        finished = True
                        break
                    if len(buf) != size:
                        raise MediaError(f"{self.path}: cannot decode video: a frame of {len(buf)} bytes, expected "
                                         f"{self.width}×{self.height}×3 = {size}")
                    yield np.frombuffer(buf, np.uint8).reshape(self.height, self.width, 3)
            finally:
                proc.stdout.close()
                if not finished:
                    proc.kill()
                code = proc.wait()
            if finished and code != 0:
                errors.seek(0)
                detail = errors.read().decode(errors="replace").strip()[-400:]
                raise MediaError(f"{self.path}: cannot decode video: {detail or f'ffmpeg exit {code}'}")


def open_video(path: Path | str) -> VideoStream:
    """The first video stream of any file ffmpeg reads (:class:`VideoStream`); :class:`MediaError` if none."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")
    stream = _first_video_stream(media_summary(path))
    size = _VIDEO_SIZE.search(stream[0].split(": Video: ", 1)[1]) if stream else None
    if size is None:
        raise MediaError(f"{path}: no video stream (not a video file, or an unreadable one)")
    width, height = int(size.group(1)), int(size.group(2))
    rotation = display_rotation("\n".join(stream))
    if quarter_turn(rotation):
        width, height = height, width
    rate = _VIDEO_RATE.search(stream[0])
    return VideoStream(str(path), width, height, float(rate.group(1)) if rate else 0.0, rotation)


def read_video(path: Path | str) -> np.ndarray:
    """Decode every frame of the first video stream of any file ffmpeg reads: (T, H, W, 3) uint8 RGB, upright.

    The pixels decord gives (both use ffmpeg's rgb24 conversion), at any frame size (decord fails on some small
    ones), turned upright by the stream's display matrix (module docstring). The whole stream is decoded once
    first: an error anywhere in it (a truncated file) raises, rather than returning the frames before it.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: video file not found")
    check = subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null",
                            "-"], capture_output=True, check=False)
    if check.returncode != 0 or check.stderr.strip():
        raise MediaError(f"{path}: cannot decode video: {check.stderr.decode(errors='replace').strip()[-400:]}")
    video = list(open_video(path).frames())
    if not video:
        raise MediaError(f"{path}: no video frames")
    return np.stack(video)
