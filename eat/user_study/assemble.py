"""Assemble the user study: the same MEAD test clips for every method (4 identities × 8 emotions where the test
set has them), shuffled under blind names (seeded), copied to ``<out>/videos/<blind>.mp4``; ``<out>/key.json``
maps each blind name to (method, uid, identity, emotion, level); ``<out>/index.html`` is the rating page.

A method is a folder of videos named by test clip uid (``<folder>/<uid>.mp4``, with sound): the evaluate stage's
``reports/evaluate/<model>/videos`` or a baseline's ``data/baselines/<method>``."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from eat.config import EMOTIONS
from eat.io.atomic import write_text_atomic
from eat.paths import BASELINES, EVALUATE, SYNTH
from eat.user_study.page import rating_page

PAPER_VIDEOS = 32   # 4 identities × 8 emotions per method (the paper's Table 2)


@dataclass(frozen=True)
class StudyVideo:
    blind: str
    method: str
    uid: str
    identity: str
    emotion: str
    level: int | None


def default_methods(videos_root: Path | str = EVALUATE, baselines: Path | str | None = BASELINES,
                    models: tuple[str, ...] = ("ground_truth", "pretrain", "eat")) -> dict[str, Path]:
    """``{method: folder}``: the models' evaluation videos and every baseline folder."""
    methods = {m: Path(videos_root) / m / "videos" for m in models}
    if baselines and Path(baselines).is_dir():
        methods |= {p.name: p for p in sorted(Path(baselines).iterdir()) if p.is_dir()}
    return methods


def select_clips(manifest: pd.DataFrame, available: Mapping[str, set[str]], identities: int = 4,
                 emotions: tuple[str, ...] = EMOTIONS) -> pd.DataFrame:
    """One MEAD test clip per (identity, emotion) that every method has: the highest level, then the first
    sentence; the ``identities`` identities covering the most emotions (then by name)."""
    common = set.intersection(*map(set, available.values())) if available else set()
    clips = manifest[(manifest.dataset == "MEAD") & (manifest.split == "test") & manifest.uid.isin(common)
                     & manifest.emotion.isin(emotions)].copy()
    if clips.empty:
        return clips
    clips["level_sort"] = -pd.to_numeric(clips.get("level"), errors="coerce").fillna(0)
    clips = clips.sort_values(["identity", "emotion", "level_sort", "uid"]).drop_duplicates(["identity", "emotion"])
    coverage = clips.groupby("identity").size().sort_values(ascending=False, kind="stable")
    chosen = sorted(coverage.index[:identities], key=lambda i: (-coverage[i], i))
    return clips[clips.identity.isin(chosen)].drop(columns="level_sort").reset_index(drop=True)


def _place(src: Path, dst: Path, link: bool) -> None:
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def assemble(methods: Mapping[str, Path | str], manifest: Path | str, out_dir: Path | str, *, seed: int,
             identities: int = 4, link: bool = False) -> dict:
    """Build the study in ``out_dir``; returns its summary (also in ``key.json``)."""
    table = pd.read_parquet(manifest)
    notes, available = [], {}
    for method, folder in methods.items():
        uids = {p.stem for p in Path(folder).glob("*.mp4")} if Path(folder).is_dir() else set()
        if uids:
            available[method] = uids
        else:
            notes.append(f"{method}: no videos in {folder}/ — left out of the study")
    if not available:
        raise FileNotFoundError("no method has videos: expected <folder>/<uid>.mp4 in "
                                + ", ".join(str(f) for f in methods.values()))
    clips = select_clips(table, available, identities)
    if clips.empty:
        raise ValueError(f"{manifest}: no MEAD test clip has a video in every method folder "
                         f"({', '.join(f'{m}: {len(u)} videos' for m, u in available.items())})")
    if len(clips) < PAPER_VIDEOS:
        test = table[(table.dataset == "MEAD") & (table.split == "test")]
        synthetic = "video_path" in table and table.video_path.astype(str).str.contains(str(SYNTH), regex=False).all()
        notes.append(f"{len(clips)} videos per method ({clips.identity.nunique()} identities × "
                     f"{clips.emotion.nunique()} emotions with a video in every method), not the paper's "
                     f"{PAPER_VIDEOS} (4 × 8); the MEAD test split has {test.identity.nunique()} identities"
                     + (" (the embedded synthetic data)" if synthetic else ""))
    rows = [(m, c) for m in available for c in clips.itertuples(index=False)]
    random.Random(seed).shuffle(rows)
    out = Path(out_dir)
    videos = out / "videos"
    if videos.exists():
        shutil.rmtree(videos)   # no stale clip of an earlier study
    videos.mkdir(parents=True)
    items = []
    for i, (method, clip) in enumerate(rows):
        blind = f"clip_{i + 1:03d}"
        _place(Path(methods[method]) / f"{clip.uid}.mp4", videos / f"{blind}.mp4", link)
        level = getattr(clip, "level", None)
        items.append(StudyVideo(blind, method, clip.uid, clip.identity, clip.emotion,
                                None if pd.isna(level) else int(level)))
    study_id = hashlib.sha256(json.dumps([asdict(x) for x in items]).encode()).hexdigest()[:12]
    summary = {"study_id": study_id, "seed": seed, "methods": list(available),
               "videos_per_method": len(clips), "identities": sorted(clips.identity.unique()),
               "emotions": sorted(clips.emotion.unique(), key=EMOTIONS.index), "notes": notes,
               "key": {x.blind: {k: v for k, v in asdict(x).items() if k != "blind"} for x in items}}
    write_text_atomic(out / "key.json", json.dumps(summary, indent=2) + "\n")
    write_text_atomic(out / "index.html", rating_page(study_id, [x.blind for x in items], EMOTIONS))
    (out / "ratings").mkdir(exist_ok=True)
    return summary
