"""Per-clip rows and aggregates: ground truth against itself gives the known answers end to end; PSNR/SSIM
weigh clips by frames, LMD and Sync by videos; the JSON is flat with nulls for non-finite values."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from eat.config import EMOTIONS
from eat.preprocess.landmarks import Detection
from eat.scoring import REFERENCE_FACE, write_metrics, write_rows
from metrics.align import template
from metrics.fid import FeatureSpace
from metrics.sync import SyncScore
from metrics.table import aggregate, fid_metric, image_metrics, sync_row


class TemplateDetector:
    """A face at the template's place scaled ×2: the crop is the frame's top-left quarter, downscaled."""

    def __call__(self, frame: np.ndarray) -> Detection:
        return Detection((template(REFERENCE_FACE) * 2 * frame.shape[0] / 256).astype(np.float32), 1)


def video(seed: int, n: int = 12) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 256, 256, 3), dtype=np.uint8)


def test_ground_truth_against_itself_gives_the_known_answers():
    real = video(0)
    res = image_metrics("gt", real, real, TemplateDetector, REFERENCE_FACE)
    assert res.row["face_frames"] == 12 and res.row["PSNR"] == math.inf and res.row["SSIM"] == pytest.approx(1.0)
    assert res.row["M-LMD"] == 0.0 and res.row["F-LMD"] == 0.0
    assert res.fid_fake.shape == (5, 128, 128, 3) and (res.fid_fake == res.fid_real).all()
    mean_colour = FeatureSpace("FD_mean_colour", "test space", lambda x: x.mean(dim=(2, 3)))
    assert fid_metric(mean_colour, [res, image_metrics("b", video(1), video(1), TemplateDetector, REFERENCE_FACE)]) == {
        "FD_mean_colour": pytest.approx(0.0, abs=1e-9), "FD_mean_colour_frames": 10}


def test_generated_frames_differ_from_the_truth():
    res = image_metrics("x", video(1, 8), video(0, 10), TemplateDetector, REFERENCE_FACE)   # lengths differ: 8 pairs
    assert res.row["frames"] == 8 and 0 < res.row["PSNR"] < 20 and res.row["SSIM"] < 0.2


def test_aggregates_weigh_frames_for_psnr_and_videos_for_the_rest():
    rows = pd.DataFrame({
        "uid": ["a", "b", "c"], "face_frames": [10, 30, 0], "PSNR": [20.0, 24.0, math.nan],
        "SSIM": [0.5, 0.7, math.nan], "M-LMD": [1.0, 3.0, math.nan], "F-LMD": [2.0, 2.0, math.nan],
        "Sync": [6.0, 8.0, 7.0], "Sync_dist": [7.0, 7.0, 7.0], "Sync_offset": [1, -3, 0],
        "emotion": ["happy", "sad", "sad"], "emotion_pred": ["happy", "sad", "angry"]})
    out = aggregate(rows, EMOTIONS)
    assert out["PSNR"] == pytest.approx((10 * 20 + 30 * 24) / 40) and out["SSIM"] == pytest.approx(0.65)
    assert out["M-LMD"] == 2.0 and out["F-LMD"] == 2.0                   # the faceless clip is skipped
    assert out["Sync"] == 7.0 and out["Sync_abs_offset"] == pytest.approx(4 / 3)
    assert sync_row("a", "Sync", SyncScore(1, 6.0, 7.0, 20, 15)) == rows.iloc[0][["uid", "Sync", "Sync_offset",
                                                                                  "Sync_dist"]].to_dict()
    assert out["Acc_emo"] == pytest.approx(2 / 3) and out["Acc_emo_sad"] == 0.5 and out["clips"] == 3


def test_rows_round_trip_and_the_metrics_json_is_flat(tmp_path):
    frame = write_rows([{"uid": "b", "PSNR": 1.5}, {"uid": "a", "PSNR": math.inf}], tmp_path / "rows.parquet")
    assert pd.read_parquet(tmp_path / "rows.parquet").equals(frame) and frame.uid.tolist() == ["a", "b"]
    write_metrics({"PSNR": math.inf, "SSIM": 0.123456, "M-LMD": math.nan, "clips": np.int64(3)}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"PSNR": None, "SSIM": 0.1235, "M-LMD": None, "clips": 3}


def test_fid_is_null_when_no_frame_pair_had_a_face():
    import math

    from metrics.fid import FeatureSpace
    from metrics.table import ImageResult, fid_metric

    space = FeatureSpace("FD_test", "test", lambda x: np.zeros((len(x), 4)))
    empty = np.zeros((0, 128, 128, 3), np.uint8)
    out = fid_metric(space, [ImageResult({"uid": "a"}, empty, empty)])
    assert math.isnan(out["FD_test"]) and out["FD_test_frames"] == 0
