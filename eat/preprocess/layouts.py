"""Recognise the MEAD, LRW and VoxCeleb2 folder layouts and turn file paths into clip records.

MEAD   <root>/<M0xx|W0xx>/video/front/<emotion>/level_<n>/<nnn>.mp4 with audio in
       <root>/<id>/audio/<emotion>/level_<n>/<nnn>.m4a (Wang et al., ECCV 2020).
LRW    <root>/lipread_mp4/<WORD>/<train|val|test>/<WORD>_<nnnnn>.mp4, audio inside (Chung & Zisserman, 2016).
VoxCeleb2  <root>/mp4/<idNNNNN>/<video id>/<nnnnn>.mp4 (audio inside) and optionally
       <root>/aac/<idNNNNN>/<video id>/<nnnnn>.m4a (Chung et al., 2018).

Files that do not fit their dataset's layout are reported, not guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from eat.config import EMOTIONS, MEAD_TEST_IDENTITIES

MEDIA_SUFFIXES = {".mp4", ".m4a", ".wav", ".avi", ".mov", ".mkv", ".aac"}
_MEAD_VIDEO = re.compile(r"(?P<id>[MW]\d{3})/video/front/(?P<emotion>[a-z]+)/level_(?P<level>[1-3])/(?P<n>\d{3})\.mp4")
_MEAD_AUDIO = re.compile(r"(?P<id>[MW]\d{3})/audio/(?P<emotion>[a-z]+)/level_(?P<level>[1-3])/(?P<n>\d{3})\.m4a")
_LRW = re.compile(r"lipread_mp4/(?P<word>[A-Z]+)/(?P<split>train|val|test)/(?P=word)_(?P<n>\d{5})\.mp4")
_VOX_VIDEO = re.compile(r"mp4/(?P<id>id\d{5})/(?P<video>[\w-]{11})/(?P<n>\d{5})\.mp4")
_VOX_AUDIO = re.compile(r"aac/(?P<id>id\d{5})/(?P<video>[\w-]{11})/(?P<n>\d{5})\.m4a")


@dataclass(frozen=True)
class RawClip:
    """A clip as found on disk, before its media are probed."""

    clip_id: str
    dataset: str
    identity: str
    emotion: str
    level: int
    sentence: str
    split: str
    video_path: Path
    audio_path: Path | None  # None: the audio is inside the video file

    @property
    def uid(self) -> str:
        return uid_of(self.clip_id)


@dataclass(frozen=True)
class Stray:
    """A file that belongs to no clip, and why."""

    path: Path
    reason: str


def uid_of(clip_id: str) -> str:
    """File-system-safe clip name: ``MEAD/M003/angry/level_3/001`` → ``MEAD__M003__angry__level_3__001``."""
    return clip_id.replace("/", "__")


def _media_files(root: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower() in MEDIA_SUFFIXES and not path.name.startswith("."):
            yield path, path.relative_to(root).as_posix()


def scan_mead(root: Path) -> Iterator[RawClip | Stray]:
    """MEAD: split by identity; EAMM's test identities (Ji et al., SIGGRAPH 2022, as used by EAT) are test."""
    videos, audios = {}, {}
    for path, rel in _media_files(root):
        if m := _MEAD_VIDEO.fullmatch(rel):
            videos[(m["id"], m["emotion"], m["level"], m["n"])] = path
        elif m := _MEAD_AUDIO.fullmatch(rel):
            audios[(m["id"], m["emotion"], m["level"], m["n"])] = path
        else:
            yield Stray(path, "not in the MEAD layout <id>/video/front/<emotion>/level_<n>/<nnn>.mp4 "
                              "or <id>/audio/<emotion>/level_<n>/<nnn>.m4a")
    for key in sorted(set(audios) - set(videos)):
        yield Stray(audios[key], "audio without video: no matching <id>/video/front/... .mp4")
    for key, video in sorted(videos.items()):
        ident, emotion, level, n = key
        if emotion not in EMOTIONS:
            yield Stray(video, f"unknown MEAD emotion {emotion!r} (expected one of {', '.join(EMOTIONS)})")
            continue
        if key not in audios:
            yield Stray(video, f"video without audio: expected {root / ident / 'audio' / emotion / f'level_{level}'}"
                               f"/{n}.m4a")
            continue
        yield RawClip(f"MEAD/{ident}/{emotion}/level_{level}/{n}", "MEAD", ident, emotion, int(level), n,
                      "test" if ident in MEAD_TEST_IDENTITIES else "train", video, audios[key])


def scan_lrw(root: Path) -> Iterator[RawClip | Stray]:
    """LRW: its own train/val/test folders; every clip is neutral speech of one word."""
    for path, rel in _media_files(root):
        if path.suffix.lower() == ".txt":
            continue
        if m := _LRW.fullmatch(rel):
            yield RawClip(f"LRW/{m['word']}/{m['split']}/{m['word']}_{m['n']}", "LRW",
                          f"LRW/{m['word']}_{m['n']}", "neutral", 1, m["word"], m["split"], path, None)
        else:
            yield Stray(path, "not in the LRW layout lipread_mp4/<WORD>/<train|val|test>/<WORD>_<nnnnn>.mp4")


def scan_voxceleb2(root: Path) -> Iterator[RawClip | Stray]:
    """VoxCeleb2: pretraining data only (split "train"); audio from the aac/ .m4a when present, else the mp4."""
    audios = {}
    clips = []
    for path, rel in _media_files(root):
        if m := _VOX_VIDEO.fullmatch(rel):
            clips.append((m["id"], m["video"], m["n"], path))
        elif m := _VOX_AUDIO.fullmatch(rel):
            audios[(m["id"], m["video"], m["n"])] = path
        else:
            yield Stray(path, "not in the VoxCeleb2 layout mp4/<idNNNNN>/<video>/<nnnnn>.mp4 (+ aac/... .m4a)")
    for ident, video, n, path in clips:
        yield RawClip(f"VoxCeleb2/{ident}/{video}/{n}", "VoxCeleb2", ident, "neutral", 1, f"{video}/{n}", "train",
                      path, audios.get((ident, video, n)))


SCANNERS = {"MEAD": scan_mead, "LRW": scan_lrw, "VoxCeleb2": scan_voxceleb2}
