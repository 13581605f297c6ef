"""The ``ingest`` stage: scan the dataset roots, probe every clip, write the manifest and the quarantine.

A clip enters the manifest only if its video and audio streams open, the video has
enough frames, and video and audio durations agree within a tolerance; every other
file ends in the quarantine table with the reason. Frame rate, sample rate, channels
and variable frame rate are recorded, not rejected: the ``normalise`` stage repairs
them (their fix is well defined).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from eat import schema
from eat.config import Params
from eat.io.media import MediaError
from eat.parallel import map_clips
from eat.preprocess.layouts import SCANNERS, RawClip, Stray
from eat.preprocess.probe import probe_media
from eat.preprocess.table import quarantine_row, write_quarantine, write_table

log = logging.getLogger(__name__)
STAGE = "ingest"


def _transcripts(path: str) -> dict[str, str]:
    """clip_id → text from an optional table with columns clip_id, text (the synthetic ground truth has one)."""
    if not path:
        return {}
    table = Path(path)
    if not table.is_file():
        raise FileNotFoundError(f"data.transcripts: {table} not found (set it to '' if you have no transcripts)")
    frame = pd.read_parquet(table, columns=["clip_id", "text"])
    return dict(zip(frame.clip_id, frame.text, strict=True))


def probe_clip(clip: RawClip, min_frames: int, max_mismatch_s: float) -> dict:
    """Manifest fields of one clip; raises :class:`MediaError` with the reason it cannot be used."""
    video = probe_media(clip.video_path)
    if not video.has_video:
        raise MediaError(f"{clip.video_path}: has no video stream")
    if video.n_frames < min_frames:
        raise MediaError(f"{clip.video_path}: {video.n_frames} frames, fewer than ingest.min_frames = {min_frames}")
    audio = video if clip.audio_path is None else probe_media(clip.audio_path)
    if not audio.has_audio:
        raise MediaError(f"{clip.audio_path or clip.video_path}: has no audio stream")
    video_s = video.n_frames / video.fps
    if abs(video_s - audio.duration_s) > max_mismatch_s:
        raise MediaError(f"{clip.video_path}: audio and video lengths differ: video {video_s:.2f} s, audio "
                         f"{audio.duration_s:.2f} s (tolerance ingest.max_av_mismatch_s = {max_mismatch_s} s)")
    return {
        "video_path": str(clip.video_path),
        "audio_path": str(clip.audio_path or clip.video_path),
        "fps": video.fps, "audio_rate": audio.audio_rate, "duration_s": video_s,
        "n_frames": video.n_frames, "width": video.width, "height": video.height,
    }


def _roots(params: Params) -> dict[str, Path]:
    return {"MEAD": Path(params.data.mead_root), "LRW": Path(params.data.lrw_root),
            "VoxCeleb2": Path(params.data.voxceleb2_root)}


def ingest(params: Params, out_dir: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``manifest.parquet`` and ``ingest_quarantine.parquet`` under ``out_dir``."""
    out_dir = Path(out_dir)
    cfg = params.ingest
    texts = _transcripts(params.data.transcripts)
    clips: list[RawClip] = []
    quarantine: list[dict] = []
    for dataset, root in _roots(params).items():
        if not root.is_dir():
            raise FileNotFoundError(f"data.{dataset.lower()}_root: {root} is not a directory (point it at an empty "
                                    f"folder to leave {dataset} out)")
        for found in SCANNERS[dataset](root):
            if isinstance(found, Stray):
                quarantine.append(quarantine_row(str(found.path), STAGE, found.path, found.reason))
            else:
                clips.append(found)
    outcomes = map_clips(lambda c: probe_clip(c, cfg.min_frames, cfg.max_av_mismatch_s), clips, desc="ingest",
                         workers=params.ray.workers, address=params.ray.address)
    rows = []
    for outcome in outcomes:
        clip = outcome.item
        if outcome.error is not None:
            quarantine.append(quarantine_row(clip.clip_id, STAGE, clip.video_path, outcome.error))
            continue
        text = texts.get(clip.clip_id, clip.sentence if clip.dataset == "LRW" else "")
        rows.append({"clip_id": clip.clip_id, "uid": clip.uid, "dataset": clip.dataset, "identity": clip.identity,
                     "emotion": clip.emotion, "level": clip.level, "sentence": clip.sentence, "text": text,
                     "split": clip.split, **outcome.value})
    manifest = pd.DataFrame(rows, columns=schema.MANIFEST.names).sort_values("clip_id", ignore_index=True)
    write_table(manifest, out_dir / "manifest.parquet", schema.MANIFEST)
    bad = write_quarantine(quarantine, out_dir / f"{STAGE}_quarantine.parquet")
    log.info("ingest: %d clips in the manifest, %d quarantined", len(manifest), len(bad))
    return manifest, bad
