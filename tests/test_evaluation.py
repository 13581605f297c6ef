"""The evaluate stage's scoring: a baseline folder holding the ground truth scores as the ground truth does; missing,
corrupt and unscorable baseline videos are skipped with their reasons, the rest still scored; scoring on Ray gives
the very numbers of the in-process path; test_clips.csv names each clip's source."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from eat.a2et.data import A2ETClip, Source
from eat.evaluation import (
    ClipScorer,
    aligned_truth,
    baseline_methods,
    baseline_videos,
    listed_clips,
    score_baseline,
    score_clips,
    scoring_session,
    summary,
    write_summary,
)
from eat.io.media import write_video
from eat.io.video import read_frames
from metrics.fid import FeatureSpace
from tests.conftest import micro_params
from tests.processes import in_fresh_process
from tests.test_metrics_table import TemplateDetector

FRAMES, SIZE = 12, 64
UIDS = ("MEAD__W009__angry__level_3__001", "MEAD__W009__happy__level_3__001", "MEAD__W009__neutral__level_1__001",
        "MEAD__W009__sad__level_3__001")
MEAN_COLOUR = FeatureSpace("FD_mean_colour", "test space", lambda x: x.mean(dim=(2, 3)))


def smooth_video(seed: int, n: int = FRAMES, size: int = SIZE) -> np.ndarray:
    """(n, size, size, 3) uint8: coarse random blocks, blurred by the upscale, so H.264 keeps them recognisable."""
    coarse = np.random.default_rng(seed).integers(0, 255, (n, 8, 8, 3)).astype(np.float32)
    return torch.nn.functional.interpolate(torch.from_numpy(coarse).permute(0, 3, 1, 2), size=(size, size),
                                           mode="bilinear").permute(0, 2, 3, 1).round().numpy().astype(np.uint8)


def make_clip(uid: str, frames: np.ndarray, audio: Path, n_mels: int, seed: int) -> A2ETClip:
    """A clip with what scoring reads (uid, emotion, frames, mel, audio); the model inputs are placeholders."""
    t = len(frames)
    zeros = np.zeros((t, 1), np.float32)
    return A2ETClip(uid=uid, dataset="MEAD", emotion=uid.split("__")[2], speech=zeros, pose=zeros, pose_image=zeros,
                    mel=np.random.default_rng(seed).normal(size=(t, n_mels)).astype(np.float32), pe=zeros,
                    keypoints=zeros, rotation=zeros, translation=zeros, audio=str(audio), frames=frames,
                    source=Source(frames[0], zeros, zeros, zeros, zeros))


@pytest.fixture(scope="module")
def scoring(tmp_path_factory) -> dict:
    """Four MEAD clips whose ground truth is an mp4 (decoded as the pipeline does), their alignment, a seeded
    random sync expert on disk and emotion classifier, and the scorer (TemplateDetector: a face in every frame)."""
    from eat.emotion.emotion_fan import EmotionFAN
    from eat.sync.train import save_sync_expert
    from eat.sync.wav2lip_expert import SyncExpert

    root, params = tmp_path_factory.mktemp("evaluation"), micro_params()
    clips = []
    for i, uid in enumerate(UIDS):
        write_video(root / "truth" / f"{uid}.mp4", iter(smooth_video(i)), 25.0, SIZE, SIZE, crf=18)
        sf.write(root / f"{uid}.wav", np.zeros(FRAMES * 640, np.float32), 16000)
        clips.append(make_clip(uid, read_frames(root / "truth" / f"{uid}.mp4", SIZE), root / f"{uid}.wav",
                               params.signal.n_mels, i))
    torch.manual_seed(0)
    save_sync_expert(SyncExpert(params.sync_expert, params.signal.n_mels), 0, root / "expert.pt")
    scorer = ClipScorer(str(root / "expert.pt"), TemplateDetector)
    torch.manual_seed(1)
    return {"root": root, "clips": clips, "scorer": scorer, "truth": aligned_truth(clips, TemplateDetector),
            "classifier": EmotionFAN(params.emotion_classifier).eval()}


def test_a_baseline_of_the_ground_truth_videos_scores_as_the_ground_truth(scoring, tmp_path):
    clips, folder = scoring["clips"], tmp_path / "copies"
    shutil.copytree(scoring["root"] / "truth", folder)
    videos, kept, skipped = baseline_videos(folder, clips)
    assert skipped == [] and [c.uid for c in kept] == list(UIDS)
    args = ("MEAD", scoring["truth"], scoring["scorer"], scoring["classifier"])
    baseline, _, failed = score_clips(videos, kept, *args)
    truth, _, _ = score_clips([c.frames for c in clips], clips, *args)
    assert failed == {} and (baseline.PSNR == math.inf).all() and np.allclose(baseline.SSIM, 1.0)
    assert (baseline["M-LMD"] == 0).all() and (baseline["F-LMD"] == 0).all()
    assert (baseline.face_frames == FRAMES - 1).all()       # these clips' source is their frame 0: an input, unscored
    pd.testing.assert_frame_equal(baseline, truth, check_exact=True)


def test_missing_corrupt_and_unscorable_videos_are_skipped_with_their_reasons(scoring, tmp_path, caplog):
    clips, folder = scoring["clips"], tmp_path / "wav2lip"
    folder.mkdir()
    kept, absent, corrupt, short = UIDS
    shutil.copy(scoring["root"] / "truth" / f"{kept}.mp4", folder)
    data = (scoring["root"] / "truth" / f"{corrupt}.mp4").read_bytes()
    (folder / f"{corrupt}.mp4").write_bytes(data[:len(data) // 2])                     # truncated: no moov atom
    write_video(folder / f"{short}.mp4", iter(smooth_video(9, n=3, size=48)), 25.0, 48, 48)  # 3 frames: 1 sync window
    with caplog.at_level(logging.WARNING, logger="eat.evaluation"):
        rows, fid, skipped = score_baseline(folder, clips, "MEAD", scoring["truth"], scoring["scorer"],
                                            scoring["classifier"])
    assert rows.uid.tolist() == [kept] and rows.PSNR.tolist() == [math.inf] and len(fid) == 1
    reasons = {s["uid"]: (s["path"], s["reason"]) for s in skipped}
    assert set(reasons) == {absent, corrupt, short}
    assert reasons[absent] == (str(folder / f"{absent}.mp4"), "video file not found")
    assert reasons[corrupt][1].startswith("cannot decode video") and "moov atom not found" in reasons[corrupt][1]
    assert "need at least 2" in reasons[short][1]
    assert all(uid in caplog.text for uid in reasons)

    numbers = summary(rows, fid, MEAN_COLOUR, "MEAD") | {"MEAD/skipped": len(skipped)}
    write_summary(numbers, tmp_path / "metrics.json", [{"dataset": "MEAD", **s} for s in skipped])
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["MEAD/clips"] == 1 and written["MEAD/M-LMD"] == 0 and written["MEAD/skipped"] == 3
    assert {s["uid"] for s in written["skipped"]} == set(reasons) and "reason" in written["skipped"][0]


def _score_on_local_ray(videos, clips, args):
    with scoring_session(2, "local"):
        return (*score_clips(videos, clips, *args, workers=2), aligned_truth(clips, TemplateDetector, workers=2))


def test_scoring_on_ray_gives_the_numbers_of_the_inline_path(scoring):
    clips, truth = scoring["clips"], scoring["truth"]
    videos = [smooth_video(10 + i, n=FRAMES - i, size=SIZE + 32 * i) for i in range(len(clips))]  # any size, length
    args = ("MEAD", truth, scoring["scorer"], scoring["classifier"])
    inline, inline_fid, _ = score_clips(videos, clips, *args, workers=1)
    parallel, parallel_fid, failed, parallel_truth = in_fresh_process(_score_on_local_ray, videos, clips, args)
    assert failed == {} and inline.PSNR.between(0, 40).all()
    pd.testing.assert_frame_equal(parallel, inline, check_exact=True)
    assert all((a.fid_fake == b.fid_fake).all() and (a.fid_real == b.fid_real).all()
               for a, b in zip(parallel_fid, inline_fid, strict=True))
    assert all((parallel_truth[u].frames == truth[u].frames).all() and
               np.array_equal(parallel_truth[u].landmarks, truth[u].landmarks, equal_nan=True) for u in truth)


def test_test_clips_name_each_clips_source_audio_and_emotion(tmp_path):
    rows = [("MEAD__W009__neutral__level_1__001", "MEAD", "W009", "neutral", "001"),
            ("MEAD__W009__neutral__level_1__002", "MEAD", "W009", "neutral", "002"),
            ("MEAD__W009__angry__level_3__002", "MEAD", "W009", "angry", "002"),
            ("MEAD__W009__sad__level_3__003", "MEAD", "W009", "sad", "003"),     # no neutral 003: the first neutral
            ("LRW__ABOUT__test__ABOUT_00005", "LRW", "ABOUT", "neutral", "ABOUT_00005")]
    table = pd.DataFrame(rows, columns=["uid", "dataset", "identity", "emotion", "sentence"]).assign(
        split="test", aligned=lambda t: "aligned/" + t.uid + ".mp4", features=lambda t: "audio/" + t.uid + ".npz")
    table.drop(columns="features").to_parquet(tmp_path / "latent.parquet")
    table[["uid", "features"]].to_parquet(tmp_path / "audio.parquet")
    clips = {d: [make_clip(u, smooth_video(0, n=2), Path(f"{u}.wav"), 4, 0) for u, dd, *_ in rows if dd == d]
             for d in ("MEAD", "LRW")}
    listed = pd.DataFrame([r for d, c in clips.items()
                           for r in listed_clips(c, d, tmp_path / "latent.parquet", tmp_path / "audio.parquet")])
    source = dict(zip(listed.uid, listed.source_uid, strict=True))
    assert source == {rows[0][0]: rows[0][0], rows[1][0]: rows[1][0], rows[2][0]: rows[1][0],
                      rows[3][0]: rows[0][0], rows[4][0]: rows[4][0]}
    assert listed.source_video.tolist() == ["aligned/" + source[u] + ".mp4" for u in listed.uid]
    assert (listed.source_frame == 0).all() and listed.audio.tolist() == [f"{r[0]}.wav" for r in rows]


def test_every_folder_under_baselines_is_a_method(tmp_path):
    assert baseline_methods(tmp_path / "absent") == [] and baseline_methods(None) == []
    for name in ("sadtalker", "wav2lip"):
        (tmp_path / name).mkdir()
    (tmp_path / "README.md").write_text("layout")
    assert baseline_methods(tmp_path) == ["sadtalker", "wav2lip"]


def test_the_stage_scores_every_baseline_folder_and_lists_the_test_clips(tmp_path):
    """evaluate_models on the A2ET fixture (W009: a neutral and an angry clip, MediaPipe finds their faces): ground
    truth, and a baseline folder holding one clip's ground-truth video and missing the other's."""
    from eat.config import EMOTIONS, deep_merge, parse_params, read_yaml
    from eat.emotion.emotion_fan import EmotionFAN
    from eat.evaluation import evaluate_models
    from tests.a2et_fixture import a2et_overlay, write_a2et_fixture
    from tests.conftest import REPO
    from tests.latent_fixture import fixture_overlay

    merged = deep_merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "configs" / "micro.yaml"))
    params = parse_params(deep_merge(deep_merge(deep_merge(merged, fixture_overlay()), a2et_overlay()),
                                     {"evaluate": {"workers": 2}}))                 # on Ray, MediaPipe in workers
    paths = write_a2et_fixture(tmp_path, params)
    classifier = tmp_path / "emotion.pt"
    torch.save({"emotions": list(EMOTIONS), "config": params.emotion_classifier.model_dump(),
                "state_dict": EmotionFAN(params.emotion_classifier).state_dict()}, classifier)
    neutral, angry = "MEAD__W009__neutral__001", "MEAD__W009__angry__001"
    (tmp_path / "baselines" / "copy").mkdir(parents=True)
    (tmp_path / "baselines" / "README.md").write_text("not a method")
    shutil.copy(tmp_path / "clips" / f"{angry}.mp4", tmp_path / "baselines" / "copy")

    out = tmp_path / "evaluate"
    in_fresh_process(evaluate_models, params, ["ground_truth", "static", "latent_enhanced"],
                     latent_table=paths["latent_table"], audio_table=paths["audio_table"],
                     latent_model=paths["latent_model"], pca_dir=paths["pca"],
                     a2et_model="", adaptation_dir="", sync_expert=paths["sync_expert"],
                     emotion_classifier=classifier, out_dir=out, baselines_dir=tmp_path / "baselines")
    listed = pd.read_csv(out / "test_clips.csv").set_index("uid")
    assert sorted(listed.index) == [angry, neutral] and listed.source_uid[angry] == neutral
    assert listed.source_video[angry] == str(tmp_path / "clips" / f"{neutral}.mp4")
    assert sorted(p.name for p in out.iterdir()) == ["baseline_copy", "ground_truth", "latent_enhanced", "static",
                                                     "test_clips.csv"]
    held = pd.read_parquet(out / "static" / "mead_clips.parquet").set_index("uid")   # the neutral source, held
    assert held.PSNR[neutral] > held.PSNR[angry] and held.frames[angry] == listed.frames[angry]
    # Table 3's reconstruction: every clip re-rendered by the latent model, scored as any generated video.
    rebuilt = pd.read_parquet(out / "latent_enhanced" / "mead_clips.parquet")
    assert sorted(rebuilt.uid) == [angry, neutral] and rebuilt.emotion_pred.notna().all()
    assert sorted(p.name for p in (out / "latent_enhanced" / "videos").iterdir()) == [f"{angry}.mp4", f"{neutral}.mp4"]
    metrics = json.loads((out / "baseline_copy" / "metrics.json").read_text())
    assert metrics["MEAD/clips"] == 1 and metrics["MEAD/skipped"] == 1
    assert metrics["skipped"] == [{"dataset": "MEAD", "uid": neutral, "path": str(tmp_path / "baselines" / "copy" /
                                                                                 f"{neutral}.mp4"),
                                   "reason": "video file not found"}]
    rows = pd.read_parquet(out / "baseline_copy" / "mead_clips.parquet").set_index("uid")
    assert rows.PSNR[angry] == math.inf and rows.SSIM[angry] == pytest.approx(1) and rows["M-LMD"][angry] == 0
    truth = pd.read_parquet(out / "ground_truth" / "mead_clips.parquet").set_index("uid")
    pd.testing.assert_frame_equal(rows, truth.loc[[angry]], check_exact=True)
    # The Ground Truth row's Acc_emo: the classifier on every MEAD test clip, rows kept beside its metrics.
    emotions = pd.read_parquet(out / "ground_truth" / "mead_emotion.parquet")
    assert list(emotions.uid) == [angry, neutral] and list(emotions.emotion) == ["angry", "neutral"]
    gt = json.loads((out / "ground_truth" / "metrics.json").read_text())
    hits = (emotions.emotion == emotions.emotion_pred).to_numpy(dtype=float)
    assert gt["MEAD/acc_emo_clips"] == 2 and gt["MEAD/Acc_emo"] == pytest.approx(hits.mean())
    assert gt["MEAD/Acc_emo_angry"] == pytest.approx(hits[0]) and gt["MEAD/Acc_emo_neutral"] == pytest.approx(hits[1])


@pytest.mark.parametrize("faststart", [False, True])
def test_a_truncated_video_is_unreadable_not_shortened(tmp_path, faststart):
    """With the index first (faststart) the frames before the cut would decode: the reader still refuses the file."""
    import subprocess

    from eat.io.media import MediaError, ffmpeg_exe, read_video

    write_video(tmp_path / "whole.mp4", iter(smooth_video(0)), 25.0, SIZE, SIZE)
    if faststart:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(tmp_path / "whole.mp4"), "-c", "copy", "-movflags",
                        "+faststart", str(tmp_path / "fast.mp4")], check=True)
        (tmp_path / "fast.mp4").replace(tmp_path / "whole.mp4")
    assert read_video(tmp_path / "whole.mp4").shape == (FRAMES, SIZE, SIZE, 3)
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) * 6 // 10])
    with pytest.raises(MediaError, match="cut.mp4: cannot decode video"):
        read_video(tmp_path / "cut.mp4")
