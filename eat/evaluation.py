"""The evaluation protocol behind Tables 1 and 3–8: generate the test clips with one model, score them.

Models: ``pretrain`` (A2ET after both phases, no emotion), every adaptation variant (``eat`` is the paper's),
and ``ground_truth`` (the test videos themselves: the reference rows). One stage scores them all, so each test
clip is loaded and its ground truth aligned once. Test sets (SPEC "Data and protocol"):

- MEAD test identities: each clip generated from a *neutral* source of its identity, with its own audio, its
  ground-truth head pose and (adapted models) its emotion; predicted absolute keypoints.
- LRW test: the first frame is the source, label neutral, *relative* keypoints — the expression offset of
  every frame from the first frame's prediction is applied to the source's own expression.

The MEAD videos are kept as ``videos/<uid>.mp4`` with their audio (user study, inspection).
Scores per clip (metrics/): PSNR, SSIM, M-LMD, F-LMD on aligned 128² crops; the 5 FID frames; sync confidence
and offset (lip-sync expert, or SyncNet v2 when its weights resolve); the emotion the classifier sees (MEAD).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from eat.a2et.data import A2ETClip, a2et_table
from eat.config import EMOTIONS, Params
from eat.latent.pca import ExpressionBasis

DATASETS = ("MEAD", "LRW")


def test_clips(params: Params, dataset: str, latent_table: Path | str, audio_table: Path | str,
               basis: ExpressionBasis, latent_model: Path | str, n: int) -> list[A2ETClip]:
    """``n`` test clips of ``dataset`` (0 = all), MEAD with neutral sources, LRW with its first frame."""
    from eat.a2et.train import evaluation_subset, load_clips
    from eat.adapt.heldout import heldout_clips

    if dataset == "MEAD":
        return heldout_clips(params, latent_table, audio_table, basis, latent_model, n, emotional_only=False)
    table = a2et_table(latent_table, audio_table)
    table = evaluation_subset(table[(table.dataset == dataset) & (table.split == "test")].reset_index(drop=True), n)
    return load_clips(params, table, basis, str(latent_model), with_frames=True)


def relative(pe: np.ndarray, source_pe: np.ndarray) -> np.ndarray:
    """LRW's relative keypoints in PCA space: the source's expression plus each frame's offset from frame 0."""
    return source_pe[None] + (pe - pe[:1])


@torch.no_grad()
def generate_pretrain(a2et_model: Path | str, latent_model: Path | str, params: Params, basis: ExpressionBasis,
                      clips: list[A2ETClip], dataset: str) -> list[np.ndarray]:
    """Videos of the emotion-agnostic pretrained model (A2ET + RePos-Net)."""
    from eat.a2et.evaluate import predict_clip, render_clip
    from eat.a2et.objective import ExpressionPath
    from eat.a2et.train import load_model
    from eat.latent.train import load_inference_model

    a2et, generator, path = load_model(a2et_model, params), load_inference_model(latent_model).generator, \
        ExpressionPath(basis)
    videos = []
    for clip in clips:
        pe = predict_clip(a2et, clip, params.signal.window_frames // 2, params.a2et_train.eval_batch_size)
        videos.append(render_clip(generator, path, clip, relative(pe, clip.source.pe) if dataset == "LRW" else pe))
    return videos


@torch.no_grad()
def generate_adapted(model_path: Path | str, params: Params, basis: ExpressionBasis, clips: list[A2ETClip],
                     dataset: str) -> list[np.ndarray]:
    """Videos of an adapted variant: MEAD clips with their emotion; LRW neutral with relative keypoints."""
    from eat.adapt.generate import emotion_codes, generate_clip, latent_code
    from eat.adapt.train import load_emotional_model

    model = load_emotional_model(model_path, params, basis)
    z = latent_code(model, params.seed)
    half = params.signal.window_frames // 2
    return [generate_clip(model, clip, emotion_codes(model, {clip.emotion if dataset == "MEAD" else "neutral": 1.0},
                                                      z), half, relative=dataset == "LRW") for clip in clips]


def aligned_truth(clips: list[A2ETClip]) -> dict[str, object]:
    """Each clip's ground truth aligned once (metrics.align), reused for every model scored on it."""
    from metrics.align import align_video, detector_factory

    new_detector, out = detector_factory("mediapipe"), {}
    for clip in clips:
        detector = new_detector()
        try:
            out[clip.uid] = align_video(clip.frames, detector)
        finally:
            getattr(detector, "close", lambda: None)()
    return out


def score_clips(videos: list[np.ndarray], clips: list[A2ETClip], dataset: str, truth: dict[str, object], embed,
                classifier) -> tuple[pd.DataFrame, list]:
    """(per-clip rows, their FID frame pairs) of ``videos`` against the clips' ground truth."""
    from metrics.align import detector_factory
    from metrics.emotion import predict_videos
    from metrics.sync import AVClip, sync_score
    from metrics.table import image_metrics, sync_row

    new_detector = detector_factory("mediapipe")
    column, embedder = embed
    rows, fid = [], []
    for video, clip in zip(videos, clips, strict=True):
        result = image_metrics(clip.uid, video, clip.frames, new_detector, real_aligned=truth[clip.uid])
        fid.append(result)
        rows.append({**result.row, **sync_row(clip.uid, column, sync_score(AVClip(clip.uid, video, mel=clip.mel),
                                                                            embedder)),
                     "dataset": dataset, "emotion": clip.emotion})
    table = pd.DataFrame(rows)
    if dataset == "MEAD" and len(table):
        table["emotion_pred"] = [EMOTIONS[i] for i in predict_videos(classifier, videos)]
    return table, fid


def write_videos(videos: list[np.ndarray], clips: list[A2ETClip], fps: float, folder: Path) -> None:
    """Each generated video as ``<uid>.mp4`` with its clip's audio (the user-study kit and the eye need them)."""
    from eat.io.media import read_audio, write_video

    folder.mkdir(parents=True, exist_ok=True)
    for video, clip in zip(videos, clips, strict=True):
        h, w = video.shape[1:3]
        write_video(folder / f"{clip.uid}.mp4", iter(video), fps, w, h, audio=read_audio(clip.audio))


def model_videos(name: str, params: Params, basis: ExpressionBasis, clips: list[A2ETClip], dataset: str, *,
                 a2et_model: Path | str, latent_model: Path | str, adaptation_dir: Path | str) -> list[np.ndarray]:
    """The test videos of model ``name``: the ground truth itself, the pretrained model, or an adapted variant."""
    if name == "ground_truth":
        return [c.frames for c in clips]
    if name == "pretrain":
        return generate_pretrain(a2et_model, latent_model, params, basis, clips, dataset)
    return generate_adapted(Path(adaptation_dir) / name / "model.pt", params, basis, clips, dataset)


def evaluate_models(params: Params, models: list[str], *, latent_table: Path | str, audio_table: Path | str,
                    latent_model: Path | str, pca_dir: Path | str, a2et_model: Path | str,
                    adaptation_dir: Path | str, sync_expert: Path | str, emotion_classifier: Path | str,
                    out_dir: Path | str) -> dict[str, dict[str, Any]]:
    """Stage ``evaluate``: per dataset, load the test clips and align their ground truth once, then generate and
    score them with every model; ``<out_dir>/<model>/`` gets metrics.json, the per-clip tables and MEAD videos."""
    from tqdm import tqdm

    from eat.emotion.train import load_emotion_classifier
    from eat.weights import WeightsError
    from metrics.fid import emotion_fan_features, inception_fid
    from metrics.sync import load_embedder
    from metrics.table import aggregate, fid_metric, write_metrics, write_rows

    basis = ExpressionBasis.load(pca_dir, params.latent.pca_components)
    out_dir = Path(out_dir)
    classifier = load_emotion_classifier(emotion_classifier)
    try:
        space = inception_fid()
    except WeightsError:
        space = emotion_fan_features(classifier)
    embed = load_embedder(expert_path=sync_expert)
    summaries: dict[str, dict[str, Any]] = {m: {} for m in models}
    for dataset in DATASETS:
        clips = test_clips(params, dataset, latent_table, audio_table, basis, latent_model,
                           params.evaluate.mead_clips if dataset == "MEAD" else params.evaluate.lrw_clips)
        if not clips:
            continue
        truth = aligned_truth(clips)
        for name in tqdm(models, desc=f"evaluate {dataset}", unit="model"):
            videos = model_videos(name, params, basis, clips, dataset, a2et_model=a2et_model,
                                  latent_model=latent_model, adaptation_dir=adaptation_dir)
            rows, fid = score_clips(videos, clips, dataset, truth, embed, classifier)
            write_rows(rows, out_dir / name / f"{dataset.lower()}_clips.parquet")
            if dataset == "MEAD":
                write_videos(videos, clips, params.signal.fps, out_dir / name / "videos")
            numbers = aggregate(rows.drop(columns=["dataset"])) | fid_metric(space, fid)
            summaries[name] |= {f"{dataset}/{k}": v for k, v in numbers.items()}
    for name, summary in summaries.items():
        write_metrics(summary, out_dir / name / "metrics.json")
    return summaries
