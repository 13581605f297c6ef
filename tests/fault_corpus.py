"""Build the preprocessing fault corpus: real MEAD / LRW / VoxCeleb2 folders in which most clips carry one fault.

Everything is generated into a temporary folder (nothing binary is committed): talking faces
from :mod:`eat.synth` (320×180, 1.5 s), then each fault made the way it happens in real
downloads — a file cut short, an empty file, a missing or mute audio track, silence, clipping,
48 kHz stereo, 30 fps, frames dropped mid-clip (variable frame rate), audio half the length of
the video, a file outside the layout, no face, two faces, a profile, a phone video stored sideways with a
display rotation. The MEAD root is
``données/ä``, so every MEAD path is non-ASCII.

:data:`CASES` names every entry and its fate; :func:`build_corpus` writes the folders (about
3 s on 2 cores) and returns, per case, the key, file and reason pattern the pipeline must produce.
:func:`run_pipeline` runs the four preprocessing stages as DVC does (shared with the invariant tests).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from eat.config import Params
from eat.io.media import run_ffmpeg, write_audio, write_video
from eat.preprocess import stages
from eat.preprocess.ingest import ingest
from eat.synth import face_model as fm
from eat.synth import render
from eat.synth.clip import REFERENCE_HALF_WIDTH_MM, ClipSpec, RenderedClip, render_clip
from eat.synth.corpus import lrw_phrase
from eat.synth.identities import Identity, make_identity
from tests.conftest import micro_params

SEED = 7
WIDTH, HEIGHT = 320, 180
SECONDS = 1.5
FACE_HALF_WIDTH_PX = 30.0   # the micro profile's MEAD face size, which MediaPipe finds at 320×180
PROFILE_YAW = 80.0
STAGES = ("ingest", "normalise", "crop_align", "pose")
NORMALISED = "<normalised video>"  # stands in a reason pattern for the clip's normalised video (known after the run)

# Every entry and its fate: "kept" (after a repair where one is named), or the stage whose quarantine holds it.
CASES: dict[str, str] = {
    "good_mead": "kept",               # MEAD's native 30 fps video and 48 kHz audio, normalised to 25 fps / 16 kHz
    "non_ascii_path": "kept",          # another identity under the same données/ä root
    "stereo_48k": "kept",              # repaired: down-mixed to 16 kHz mono
    "good_lrw": "kept",
    "fps_30": "kept",                  # an LRW-layout clip at 30 fps, repaired to 25 fps
    "good_voxceleb2": "kept",
    "variable_frame_rate": "kept",     # 30 fps, then every other frame dropped: repaired to constant 25 fps
    "rotated_phone_video": "kept",     # stored sideways with a display rotation (a phone's rotate=90): read upright
    "truncated_mp4": "ingest",         # cut short: the index (moov atom, written last) is lost
    "truncated_indexed_mp4": "ingest", # index first (+faststart), cut short: the index survives, the frames do not
    "zero_byte": "ingest",
    "video_without_audio": "ingest",   # a MEAD mp4 without its m4a
    "audio_without_video": "ingest",   # a MEAD m4a without its mp4
    "no_audio_stream": "ingest",       # an LRW-layout mp4 without an audio stream
    "av_length_mismatch": "ingest",    # 3 s of video, 1.5 s of audio
    "stray_file": "ingest",            # a MEAD side-camera file, outside the front-view layout
    "silent_audio": "normalise",
    "clipped_audio": "normalise",
    "no_face": "crop_align",           # background only
    "two_faces": "crop_align",         # two speakers side by side
    "profile_face": "crop_align",      # yaw 80°: MediaPipe finds no face at all, so the reason is "no face detected"
}


@dataclass(frozen=True)
class Expectation:
    """The fate of one case: ``key`` is its clip id, or the file path for a file that forms no clip."""

    case: str
    key: str
    path: Path       # the raw file the case is about
    stage: str       # CASES[case]
    reason: str      # regex a quarantine reason must match in full ("" for kept clips)


@dataclass
class FaultCorpus:
    mead_root: Path
    lrw_root: Path
    voxceleb2_root: Path
    expected: dict[str, Expectation] = field(default_factory=dict)

    def params(self, workers: int) -> Params:
        """Micro params reading this corpus; ``workers`` 1 runs in-process, more through Ray."""
        return micro_params({"data": {"mead_root": str(self.mead_root), "lrw_root": str(self.lrw_root),
                                      "voxceleb2_root": str(self.voxceleb2_root), "transcripts": ""},
                             "ray": {"workers": workers}})

    def add(self, case: str, key: str, path: Path, reason: str = "") -> None:
        self.expected[case] = Expectation(case, key, path, CASES[case], reason)


def media_error(path: Path | str, cause: str) -> str:
    """Pattern of a :class:`MediaError` reason: exception type, file (or :data:`NORMALISED`), ``cause`` (a regex)."""
    return f"MediaError: {NORMALISED if path == NORMALISED else re.escape(str(path))}: {cause}"


# --- media ---------------------------------------------------------------------------------------------------------

def _speaker(name: str, centred: bool = True) -> Identity:
    return make_identity(SEED, name, female=name.startswith("W"), centred=centred)


def _talking(speaker: Identity, fps: float, audio_rate: int, width: int = WIDTH, variant: int = 0) -> RenderedClip:
    """1.5 s of ``speaker`` saying an LRW carrier phrase, the word in the middle."""
    spec = ClipSpec(dataset="faults", clip_id=f"faults/{speaker.name}/{fps:g}/{variant}", identity=speaker,
                    emotion="neutral", level=1, sentence_id=-1, text=lrw_phrase("ABOUT", variant), split="train",
                    video="", audio="", fps=fps, width=width, height=HEIGHT, audio_rate=audio_rate,
                    face_half_width_px=FACE_HALF_WIDTH_PX, n_frames=int(round(SECONDS * fps)), word="ABOUT")
    return render_clip(spec, SEED)


def _profile_frames(speaker: Identity, n_frames: int, yaw: float) -> list[np.ndarray]:
    """The speaker's head turned by ``yaw`` degrees (face_model.project with a pose), mouth opening and closing."""
    cam = fm.Camera(focal=FACE_HALF_WIDTH_PX * 600.0 / REFERENCE_HALF_WIDTH_MM, cx=WIDTH / 2, cy=HEIGHT / 2)
    rest, cranium = fm.neutral_landmarks(speaker.shape), fm.cranium_outline(speaker.shape)
    backdrop = render.background(speaker.appearance, WIDTH, HEIGHT)
    frames = []
    for i in range(n_frames):
        pts = fm.apply_viseme(rest, 0.5 + 0.5 * np.sin(i / 3), 0.0, 0.0, speaker.shape)
        xy, _ = fm.project(np.concatenate([pts, cranium]), np.array([yaw, 0, 0, 0, 0, 0.0]), cam)
        frames.append(render.draw_face(backdrop, xy[:fm.N_LANDMARKS], xy[fm.N_LANDMARKS:], speaker.appearance, yaw,
                                       teeth_visible=0.8))
    return frames


def _video(path: Path, frames: Iterable[np.ndarray], fps: float, audio: tuple[np.ndarray, int] | None = None) -> Path:
    write_video(path, frames, fps, WIDTH, HEIGHT, crf=18, audio=audio)
    return path


def _stereo_m4a(path: Path, left: np.ndarray, right: np.ndarray, rate: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "stereo.wav"
        sf.write(wav, np.stack([left, right], axis=1), rate, subtype="PCM_16")
        path.parent.mkdir(parents=True, exist_ok=True)
        run_ffmpeg(["-i", str(wav), "-c:a", "aac", "-b:a", "128k", "-fflags", "+bitexact", "-f", "ipod", str(path)],
                   path)


def _dropped_frames_mp4(path: Path, clip: RenderedClip, fps: float, audio_rate: int) -> None:
    """The first half of the frames at ``fps``, then every other one, each at its own time: variable frame rate."""
    keep_all = len(clip.frames) // 2
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "audio.wav"
        sf.write(wav, clip.samples, audio_rate, subtype="PCM_16")
        path.parent.mkdir(parents=True, exist_ok=True)
        run_ffmpeg(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "-r", f"{fps:g}",
                    "-i", "pipe:0", "-i", str(wav), "-vf", f"select='lt(n,{keep_all})+not(mod(n,2))'",
                    "-fps_mode:v", "vfr", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", "-threads", "1",
                    "-c:a", "aac", "-b:a", "128k", "-fflags", "+bitexact", "-flags:v", "+bitexact", "-f", "mp4",
                    str(path)], path, (np.ascontiguousarray(f).tobytes() for f in clip.frames))


def _copy(source: Path, target: Path, keep: float = 1.0) -> None:
    """Copy the first ``keep`` fraction of ``source`` (0.5: a download cut short; 0: an empty file)."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[: int(len(data) * keep)])


# --- datasets ------------------------------------------------------------------------------------------------------

def _mead(corpus: FaultCorpus) -> None:
    """<id>/video/front/<emotion>/level_<n>/<nnn>.mp4 (30 fps, no audio) + <id>/audio/…/<nnn>.m4a (48 kHz)."""
    root, rate = corpus.mead_root, 48000
    talk = _talking(_speaker("M005", centred=False), 30.0, rate)

    def video(ident: str, emotion: str, level: int, n: int = 1) -> Path:
        return root / ident / "video" / "front" / emotion / f"level_{level}" / f"{n:03d}.mp4"

    def audio(ident: str, emotion: str, level: int, n: int = 1) -> Path:
        return root / ident / "audio" / emotion / f"level_{level}" / f"{n:03d}.m4a"

    def clip(ident: str, emotion: str, level: int, n: int = 1) -> tuple[str, Path]:
        return f"MEAD/{ident}/{emotion}/level_{level}/{n:03d}", video(ident, emotion, level, n)

    good, speech = _video(video("M005", "neutral", 1), talk.frames, 30.0), audio("M005", "neutral", 1)
    write_audio(speech, talk.samples, rate)
    corpus.add("good_mead", *clip("M005", "neutral", 1))

    _copy(good, video("W014", "neutral", 1))
    _copy(speech, audio("W014", "neutral", 1))
    corpus.add("non_ascii_path", *clip("W014", "neutral", 1))

    _copy(good, video("M005", "angry", 3))
    _stereo_m4a(audio("M005", "angry", 3), talk.samples, 0.6 * talk.samples, rate)
    corpus.add("stereo_48k", *clip("M005", "angry", 3))

    _copy(good, video("M005", "disgusted", 3), keep=0.5)
    _copy(speech, audio("M005", "disgusted", 3))
    corpus.add("truncated_mp4", *clip("M005", "disgusted", 3), media_error(
        video("M005", "disgusted", 3), r"not a readable media file, likely truncated or corrupt "
                                       r"\(Error opening input files: Invalid data found when processing input\)"))

    _copy(good, video("M005", "contempt", 3), keep=0.0)
    _copy(speech, audio("M005", "contempt", 3))
    corpus.add("zero_byte", *clip("M005", "contempt", 3),
               media_error(video("M005", "contempt", 3), r"file is empty \(0 bytes\)"))

    lonely = video("M005", "surprised", 3)
    _copy(good, lonely)
    corpus.add("video_without_audio", str(lonely), lonely,
               "video without audio: expected " + re.escape(str(audio("M005", "surprised", 3))))

    orphan = audio("M005", "fear", 3)
    _copy(speech, orphan)
    corpus.add("audio_without_video", str(orphan), orphan,
               r"audio without video: no matching <id>/video/front/\.\.\. \.mp4")

    side_view = root / "M005" / "video" / "left_30" / "neutral" / "level_1" / "001.mp4"
    _copy(good, side_view)
    corpus.add("stray_file", str(side_view), side_view,
               r"not in the MEAD layout <id>/video/front/<emotion>/level_<n>/<nnn>\.mp4 "
               r"or <id>/audio/<emotion>/level_<n>/<nnn>\.m4a")

    _video(video("M005", "angry", 3, 2), talk.frames + talk.frames, 30.0)
    _copy(speech, audio("M005", "angry", 3, 2))
    corpus.add("av_length_mismatch", *clip("M005", "angry", 3, 2), media_error(
        video("M005", "angry", 3, 2), r"audio and video lengths differ: video 3\.00 s, audio 1\.50 s "
                                      r"\(tolerance ingest\.max_av_mismatch_s = 0\.2 s\)"))

    _copy(good, video("M005", "happy", 3))
    write_audio(audio("M005", "happy", 3), np.zeros_like(talk.samples), rate)
    corpus.add("silent_audio", *clip("M005", "happy", 3), media_error(
        audio("M005", "happy", 3), r"audio is silent \(RMS 0\.00000 < normalise\.silence_rms = 0\.003\)"))

    _copy(good, video("M005", "sad", 3))
    write_audio(audio("M005", "sad", 3), np.clip(talk.samples * 40.0 / np.abs(talk.samples).max(), -1, 1), rate)
    corpus.add("clipped_audio", *clip("M005", "sad", 3), media_error(
        audio("M005", "sad", 3), r"audio is clipped \(\d+\.\d\d % of samples at full scale > "
                                 r"normalise\.clipped_fraction = 0\.10 %\)"))

    no_face = media_error(NORMALISED, r"no face detected in 100 % of frames "
                                      r"\(crop_align\.min_detected_fraction = 0\.9\)")
    w009 = _speaker("W009", centred=False)
    _video(video("W009", "neutral", 1), [render.background(w009.appearance, WIDTH, HEIGHT)] * len(talk.frames), 30.0)
    corpus.add("no_face", *clip("W009", "neutral", 1), no_face)

    left, right = (_talking(_speaker(name), 30.0, rate, width=WIDTH // 2, variant=k)
                   for k, name in enumerate(("M007", "W011")))
    _video(video("W009", "happy", 3), (np.hstack(pair) for pair in zip(left.frames, right.frames, strict=True)), 30.0)
    corpus.add("two_faces", *clip("W009", "happy", 3),
               media_error(NORMALISED, "2 faces in frame 0; a clip must show one speaker"))

    _video(video("W009", "sad", 3), _profile_frames(w009, len(talk.frames), PROFILE_YAW), 30.0)
    corpus.add("profile_face", *clip("W009", "sad", 3), no_face)

    for emotion, level in (("neutral", 1), ("happy", 3), ("sad", 3)):
        _copy(speech, audio("W009", emotion, level))


def _lrw(corpus: FaultCorpus) -> None:
    """lipread_mp4/<WORD>/<split>/<WORD>_<nnnnn>.mp4: 25 fps, 16 kHz AAC inside."""
    folder, rate = corpus.lrw_root / "lipread_mp4" / "ABOUT", 16000
    talk = _talking(_speaker("lrw_s01"), 25.0, rate)
    good = _video(folder / "train" / "ABOUT_00001.mp4", talk.frames, 25.0, (talk.samples, rate))
    corpus.add("good_lrw", "LRW/ABOUT/train/ABOUT_00001", good)

    indexed = folder / "train" / "ABOUT_00004.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        whole = Path(tmp) / "faststart.mp4"
        run_ffmpeg(["-i", str(good), "-c", "copy", "-movflags", "+faststart", "-fflags", "+bitexact", str(whole)],
                   whole)
        _copy(whole, indexed, keep=0.6)
    corpus.add("truncated_indexed_mp4", "LRW/ABOUT/train/ABOUT_00004", indexed,
               media_error(indexed, r"video stream cannot be decoded \(Error: av_read_frame failed with -?\d+\)"))

    mute = _video(folder / "val" / "ABOUT_00002.mp4", talk.frames, 25.0)
    corpus.add("no_audio_stream", "LRW/ABOUT/val/ABOUT_00002", mute, media_error(mute, "has no audio stream"))

    phone = folder / "train" / "ABOUT_00005.mp4"
    with tempfile.TemporaryDirectory() as tmp:
        sideways = Path(tmp) / "sideways.mp4"
        write_video(sideways, (np.ascontiguousarray(np.rot90(f, 1)) for f in talk.frames), 25.0, HEIGHT, WIDTH,
                    crf=18, audio=(talk.samples, rate))
        run_ffmpeg(["-display_rotation:v:0", "-90", "-i", str(sideways), "-c", "copy", "-fflags", "+bitexact",
                    str(phone)], phone)
    corpus.add("rotated_phone_video", "LRW/ABOUT/train/ABOUT_00005", phone)

    fast = _talking(_speaker("lrw_s02"), 30.0, rate, variant=1)
    _video(folder / "test" / "ABOUT_00003.mp4", fast.frames, 30.0, (fast.samples, rate))
    corpus.add("fps_30", "LRW/ABOUT/test/ABOUT_00003", folder / "test" / "ABOUT_00003.mp4")


def _voxceleb2(corpus: FaultCorpus) -> None:
    """mp4/<idNNNNN>/<video>/<nnnnn>.mp4 (AAC inside) + aac/<idNNNNN>/<video>/<nnnnn>.m4a."""
    root, rate = corpus.voxceleb2_root, 16000
    talk = _talking(_speaker("id00017"), 25.0, rate, variant=2)
    good = _video(root / "mp4" / "id00017" / "Zq3_x-8kLw0" / "00001.mp4", talk.frames, 25.0, (talk.samples, rate))
    write_audio(root / "aac" / "id00017" / "Zq3_x-8kLw0" / "00001.m4a", talk.samples, rate)
    corpus.add("good_voxceleb2", "VoxCeleb2/id00017/Zq3_x-8kLw0/00001", good)

    jerky = root / "mp4" / "id00018" / "b7Uo2pQ-cJ4" / "00001.mp4"
    _dropped_frames_mp4(jerky, _talking(_speaker("id00018"), 30.0, rate, variant=3), 30.0, rate)
    corpus.add("variable_frame_rate", "VoxCeleb2/id00018/b7Uo2pQ-cJ4/00001", jerky)


def build_corpus(folder: Path) -> FaultCorpus:
    """Write the three dataset roots under ``folder``; returns them with the expected fate of every case."""
    corpus = FaultCorpus(folder / "données" / "ä", folder / "LRW", folder / "VoxCeleb2")
    for build in (_mead, _lrw, _voxceleb2):
        build(corpus)
    if set(corpus.expected) != set(CASES):
        raise AssertionError(f"fault_corpus: cases without files: {sorted(set(CASES) - set(corpus.expected))}")
    return corpus


@dataclass(frozen=True)
class Run:
    out: Path
    tables: dict[str, pd.DataFrame]   # stage → the table it wrote (ingest: the manifest)
    quarantine: pd.DataFrame          # the quarantine rows of all four stages


def run_pipeline(params: Params, out: Path) -> Run:
    """ingest → normalise → crop_align → pose into ``out``, each stage reading the table the previous one wrote."""
    ingest(params, out)
    tables = {"ingest": pd.read_parquet(out / "manifest.parquet")}
    table_in = out / "manifest.parquet"
    for stage, folder in (("normalise", "normalised"), ("crop_align", "aligned"), ("pose", "pose")):
        table_out = out / f"{folder}.parquet"
        tables[stage] = getattr(stages, stage)(params, table_in, out / folder, table_out)
        table_in = table_out
    quarantine = pd.concat([pd.read_parquet(out / f"{stage}_quarantine.parquet") for stage in STAGES],
                           ignore_index=True)
    return Run(out, tables, quarantine)
