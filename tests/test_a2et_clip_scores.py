"""The held-out scores of A2ET's videos (``eat.a2et.evaluate.clip_scores``): the source frame is an input, not
an output, so the image metrics skip it and the static baseline's PSNR is finite."""

from __future__ import annotations

import math

import numpy as np

import eat.a2et.evaluate
from eat.a2et.evaluate import clip_scores
from metrics.sync import SyncScore
from tests.test_metrics_table import TemplateDetector, video


def test_static_baseline_scores_a_finite_psnr_without_its_source_frame(monkeypatch):
    monkeypatch.setattr(eat.a2et.evaluate, "sync_score",
                        lambda clip, embed: SyncScore(0, 1.0, 5.0, len(clip.frames), 1))
    truth = video(0, 6)
    static = np.repeat(truth[:1], len(truth), 0)           # frame 0 is the truth's own first frame
    row = clip_scores("c", {"static": static, "ground_truth": truth}, truth, mel=np.zeros((24, 80)),
                      other_mel=None, new_detector=TemplateDetector, embed=None)
    assert row["face_frames_static"] == 5                   # frames 1 … 5: the source frame is not scored
    assert math.isfinite(row["PSNR_static"]) and 0 < row["PSNR_static"] < 20
    assert row["SSIM_static"] < 0.5 and row["Sync_static"] == 1.0
