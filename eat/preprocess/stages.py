"""Entry points of the per-clip preprocessing stages: input table → per-clip work → output table + quarantine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd

from eat.config import Params
from eat.preprocess.crop_align import crop_align_clip
from eat.preprocess.normalise import normalise_clip
from eat.preprocess.pose_stage import pose_clip
from eat.preprocess.runner import run_per_clip
from eat.preprocess.table import write_quarantine, write_table

log = logging.getLogger(__name__)


def finish_stage(stage: str, good: pd.DataFrame, quarantine: list[dict], table_out: Path) -> pd.DataFrame:
    write_table(good, table_out)
    write_quarantine(quarantine, table_out.with_name(f"{stage}_quarantine.parquet"))
    print(f"{stage}: {len(good)} clips → {table_out}, {len(quarantine)} quarantined")
    return good


def clip_work(params: Params) -> dict[str, Callable[..., dict]]:
    """Each per-clip stage's work with its settings bound (``row`` and ``out_dir`` left to give): the stages and
    ``make bench`` make the same calls."""
    return {"normalise": partial(normalise_clip, signal=params.signal, cfg=params.normalise),
            "crop_align": partial(crop_align_clip, cfg=params.crop_align, image_size=params.signal.image_size),
            "pose": partial(pose_clip, size=params.crop_align.size)}


def normalise(params: Params, table_in: Path, out_dir: Path, table_out: Path) -> pd.DataFrame:
    work = clip_work(params)["normalise"]
    settings = {"signal": params.signal.model_dump(), "normalise": params.normalise.model_dump()}
    good, bad = run_per_clip("normalise", pd.read_parquet(table_in), work, out_dir,
                             input_columns=("video_path", "audio_path"), settings=settings,
                             code_modules=["eat.preprocess.normalise", "eat.io.media"],
                             workers=params.ray.workers, address=params.ray.address)
    return finish_stage("normalise", good, bad, table_out)


def crop_align(params: Params, table_in: Path, out_dir: Path, table_out: Path) -> pd.DataFrame:
    work = clip_work(params)["crop_align"]
    settings = {**params.crop_align.model_dump(), "image_size": params.signal.image_size}
    good, bad = run_per_clip("crop_align", pd.read_parquet(table_in), work, out_dir,
                             input_columns=("video_norm",), settings=settings,
                             code_modules=["eat.preprocess.crop_align", "eat.preprocess.landmarks",
                                           "eat.preprocess.head_pose", "eat.io.media", "eat.io.arrays",
                                           "eat.io.video"],
                             workers=params.ray.workers, address=params.ray.address)
    return finish_stage("crop_align", good, bad, table_out)


def pose(params: Params, table_in: Path, out_dir: Path, table_out: Path) -> pd.DataFrame:
    work = clip_work(params)["pose"]
    good, bad = run_per_clip("pose", pd.read_parquet(table_in), work, out_dir,
                             input_columns=("aligned_arrays",), settings={"size": params.crop_align.size},
                             code_modules=["eat.preprocess.pose_stage", "eat.preprocess.head_pose"],
                             workers=params.ray.workers, address=params.ray.address)
    return finish_stage("pose", good, bad, table_out)
