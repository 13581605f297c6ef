"""What a media file holds: streams, frame rate, size, duration, sample rate and channels.

Parsed from the stream summary that the ``imageio-ffmpeg`` binary prints (no
ffprobe ships with it); the exact video frame count comes from decord's index.
A file ffmpeg cannot open raises :class:`MediaError` with ffmpeg's own reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import decord
import numpy as np

from eat.io.media import MediaError, display_rotation, media_summary, quarter_turn


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration_s: float
    has_video: bool
    has_audio: bool
    fps: float = 0.0
    n_frames: int = 0
    width: int = 0
    height: int = 0
    variable_frame_rate: bool = False
    audio_rate: int = 0
    audio_channels: int = 0


_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_VIDEO = re.compile(r"Stream #\d+:\d+.*?: Video: .*?, (\d{2,5})x(\d{2,5})[, \[].*?(?:([\d.]+) fps|([\d.]+) tbr)")
_AUDIO = re.compile(r"Stream #\d+:\d+.*?: Audio: .*?, (\d+) Hz, ([^,]+)")
_CHANNELS = {"mono": 1, "stereo": 2, "1 channels": 1, "2 channels": 2}
_DECORD_PREFIX = re.compile(r"^\[[\d:]+\] \S+:\d+: ")  # "[hh:mm:ss] file.cc:line: ": a clock time, not the cause


def _frame_timing(path: Path) -> tuple[int, bool]:
    """Exact frame count and whether frame intervals vary by more than 10 % (variable frame rate)."""
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    except decord.DECORDError as exc:
        detail = _DECORD_PREFIX.sub("", str(exc).splitlines()[0])[:200]
        raise MediaError(f"{path}: video stream cannot be decoded ({detail})") from None
    n = len(reader)
    if n < 2:
        return n, False
    stamps = reader.get_frame_timestamp(range(n))[:, 0]
    steps = np.diff(stamps)
    return n, bool(steps.size and (steps.max() - steps.min()) > 0.1 * np.median(steps))


def probe_media(path: Path | str) -> MediaInfo:
    """Describe ``path``; raises :class:`MediaError` if it is missing, empty or not a media file."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")
    text = media_summary(path)
    duration = _DURATION.search(text)
    if "Invalid data found" in text or "moov atom not found" in text or duration is None:
        last = [line for line in text.strip().splitlines() if line.strip()][-1:] or ["unknown error"]
        raise MediaError(f"{path}: not a readable media file, likely truncated or corrupt ({last[0].strip()})")
    h, m, s = duration.groups()
    info = {"path": str(path), "duration_s": int(h) * 3600 + int(m) * 60 + float(s)}
    video, audio = _VIDEO.search(text), _AUDIO.search(text)
    info["has_video"], info["has_audio"] = video is not None, audio is not None
    if video:
        info["width"], info["height"] = int(video.group(1)), int(video.group(2))
        if quarter_turn(display_rotation(text)):   # a phone's rotate=90: the size as displayed (and as normalised)
            info["width"], info["height"] = info["height"], info["width"]
        info["fps"] = float(video.group(3) or video.group(4))
        info["n_frames"], info["variable_frame_rate"] = _frame_timing(path)
    if audio:
        info["audio_rate"] = int(audio.group(1))
        layout = audio.group(2).strip()
        info["audio_channels"] = _CHANNELS.get(layout, 2 if "stereo" in layout else 1)
    return MediaInfo(**info)
