"""What the metric suite is given by this pipeline, and what becomes of its numbers.

metrics/ holds pure functions of arrays and of the models passed in, and imports nothing of eat, so that eat may
import metrics without a cycle. The pipeline's side is here: the landmark detectors and the reference face the
crops are aligned onto (:mod:`metrics.align`), the FID network from the weights registry (:mod:`metrics.fid`),
evaluation of many clips in parallel, and the files the rows and aggregates (:mod:`metrics.table`) are written
to. The emotion classifier's predictions are eat/emotion/predict.py's, the sync embedders eat/sync/embedders.py's.

Files: per-clip rows → parquet (one row per generated video, sorted by ``uid``); aggregates → flat JSON
(``{"PSNR": 21.7, ...}``), non-finite values as ``null``, so ``dvc metrics show/diff`` read it directly.
Evaluation of many clips goes through :func:`eat.parallel.map_clips` (Ray; ``workers=1`` in-process): a failing
clip becomes an error line, never the end of the run.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch

from eat.io.atomic import atomic_path, write_text_atomic
from eat.preprocess.landmarks import make_detector
from eat.synth.face_model import FaceShape, neutral_landmarks
from eat.weights import resolve
from metrics.align import DetectorFactory
from metrics.fid import FeatureSpace

REFERENCE_FACE = neutral_landmarks(FaceShape())[:, :2]
"""(68, 2) the generic face of eat/synth/face_model.py (the one head-pose PnP uses), frontal, in millimetres: the
face every crop is aligned onto (:func:`metrics.align.template`), in place of evaluation_eat's unpublished
``base_68.npy``."""


def detector_factory(backend: str = "mediapipe", fan_weights: str = "") -> DetectorFactory:
    """A new detector per video (MediaPipe tracks within a clip), the same backend for both sides."""
    return lambda: make_detector(backend, fan_weights)


@contextlib.contextmanager
def _local_fid_weights(path: Path):
    """pytorch-fid fetches its weights with ``load_state_dict_from_url``; serve the registry file instead."""
    with mock.patch("pytorch_fid.inception.load_state_dict_from_url",
                    lambda *_, **__: torch.load(path, map_location="cpu", weights_only=True)):
        yield


def inception_fid(weights_folder: Path | str | None = None) -> FeatureSpace:
    """The standard FID network; raises :class:`~eat.weights.WeightsError` naming the file when it is absent."""
    from pytorch_fid.inception import InceptionV3  # local: about a second to import, only FID needs it

    with _local_fid_weights(resolve("inception_fid", weights_folder)):
        net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=True).eval()
    return FeatureSpace("FID", "FID: pytorch-fid InceptionV3 (TF 2015-12-05 weights), 2048-d pool features",
                        lambda x: net(x)[0].flatten(1))


def write_rows(rows: pd.DataFrame | Sequence[dict], path: Path | str) -> pd.DataFrame:
    """Per-clip rows → parquet (atomic), sorted by uid."""
    frame = pd.DataFrame(list(rows) if not isinstance(rows, pd.DataFrame) else rows)
    frame = frame.sort_values("uid").reset_index(drop=True) if "uid" in frame else frame
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return frame


def write_metrics(metrics: dict, path: Path | str) -> None:
    """Flat numeric JSON for ``dvc metrics``: numbers rounded to 4 decimals, NaN / ±∞ as null."""
    def clean(v):
        if isinstance(v, bool | str) or v is None:
            return v
        if isinstance(v, int | np.integer):
            return int(v)
        v = float(v)
        return round(v, 4) if math.isfinite(v) else None
    write_text_atomic(path, json.dumps({k: clean(v) for k, v in metrics.items()}, indent=2) + "\n")
