"""The evaluation protocol behind Tables 1 and 3–8: generate the test clips with one model, score them.

Models: ``pretrain`` (A2ET after both phases, no emotion), every adaptation variant (``eat`` is the paper's),
``ground_truth`` (the test videos themselves: the reference rows), ``static`` (the source image in every frame:
the floor a generated video must beat) and Table 3's reconstructions ``latent_osfv`` and
``latent_enhanced`` (each clip re-rendered by that latent model from the keypoints it detects in the clip's own
frames: the latent space's share of every score, before A2ET predicts anything). One stage scores them all, so each test
clip is loaded and its ground truth aligned once. Test sets (docs/paper_notes.md §7):

- MEAD test identities: each clip generated from a *neutral* source of its identity, with its own audio, its
  ground-truth head pose and (adapted models) its emotion; predicted absolute keypoints.
- LRW test: the first frame is the source, label neutral, *relative* keypoints — the expression offset of
  every frame from the first frame's prediction is applied to the source's own expression
  (:func:`eat.render_clip.relative_keypoints`).

Every model's videos are rendered by :func:`eat.render_clip.generate_clip`, the project's one generation path.

The MEAD videos are kept as ``videos/<uid>.mp4`` with their audio (user study, inspection).
Scores per clip (metrics/): PSNR, SSIM, M-LMD, F-LMD on aligned 128² crops (without frame 0 where it is the
source image itself, MEAD's neutral clips and LRW: an input, on which a held source would score PSNR = ∞, as A2ET's
held-out scores skip it); the 5 FID frames; sync confidence
and offset (lip-sync expert, or SyncNet v2 when its weights resolve); the emotion the classifier sees (MEAD).
Clips are scored in parallel (:func:`eat.parallel.map_clips`, ``evaluate.workers``; one Ray session for the
stage, the sync network loaded once per worker); the emotion classifier and FID run batched in the driver.

Baselines: another method's videos, ``<baselines>/<method>/<uid>.mp4`` for the clips listed in
``test_clips.csv`` (any size and length), are scored by the same code as ``baseline_<method>``. A missing or
unreadable video leaves its clip out of that method's numbers, listed under ``skipped`` in its metrics.json.
"""

from __future__ import annotations

import json
import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from eat.a2et.data import A2ETClip, a2et_table
from eat.a2et.train import evaluation_subset, load_clips, load_model
from eat.adapt.checkpoint import load_emotional_model
from eat.adapt.data import neutral_sources
from eat.adapt.generate import emotion_codes, emotional_video, latent_code
from eat.adapt.heldout import heldout_clips
from eat.config import EMOTIONS, Params
from eat.emotion.predict import predict_videos
from eat.emotion.train import load_emotion_classifier
from eat.io.atomic import write_text_atomic
from eat.io.media import MediaError, read_audio, read_video, write_video
from eat.io.reproducible import reproducible_torch
from eat.io.tables import write_csv_atomic
from eat.io.video import read_aligned_frames
from eat.latent.data import to_tensor
from eat.latent.evaluate import reenact
from eat.latent.pca import ExpressionBasis
from eat.latent.train import load_inference_model
from eat.parallel import map_clips
from eat.ray_runtime import ray_session
from eat.render_clip import RENDER_BATCH, a2et_predictor, generate_clip
from eat.report.inputs import BASELINE_PREFIX, EMOTION_ROWS, LATENT_RECONSTRUCTIONS, STATIC
from eat.scoring import REFERENCE_FACE, detector_factory, inception_fid, write_metrics, write_rows
from eat.sync.embedders import load_embedder
from eat.weights import WeightsError
from metrics.align import AlignedVideo, DetectorFactory, align_fresh
from metrics.fid import emotion_fan_features
from metrics.sync import AVClip, SyncEmbedder, sync_score
from metrics.table import ImageResult, aggregate, fid_metric, image_metrics, sync_row

log = logging.getLogger(__name__)

DATASETS = ("MEAD", "LRW")
TEST_CLIP_COLUMNS = ("dataset", "uid", "emotion", "frames", "audio", "source_uid", "source_video", "source_frame")


def test_clips(params: Params, dataset: str, latent_table: Path | str, audio_table: Path | str,
               basis: ExpressionBasis, latent_model: Path | str, n: int) -> list[A2ETClip]:
    """``n`` test clips of ``dataset`` (0 = all), MEAD with neutral sources, LRW with its first frame."""
    if dataset == "MEAD":
        return heldout_clips(params, latent_table, audio_table, basis, latent_model, n, emotional_only=False)
    table = a2et_table(latent_table, audio_table)
    table = evaluation_subset(table[(table.dataset == dataset) & (table.split == "test")].reset_index(drop=True), n)
    return load_clips(params, table, basis, str(latent_model), with_frames=True)


def listed_clips(clips: list[A2ETClip], dataset: str, latent_table: Path | str, audio_table: Path | str
                 ) -> list[dict]:
    """Rows of ``test_clips.csv``: what another method needs to generate each test clip as ours are — the source
    image (frame ``source_frame`` of ``source_video``, the aligned video of clip ``source_uid``: for MEAD the
    neutral clip :func:`eat.adapt.data.neutral_sources` picks, for LRW the clip itself), the audio, the emotion."""
    table = a2et_table(latent_table, audio_table)
    table = table[(table.dataset == dataset) & (table.split == "test")].reset_index(drop=True)
    index = neutral_sources(table) if dataset == "MEAD" else np.arange(len(table))
    source = {uid: table.uid[i] for uid, i in zip(table.uid, index, strict=True) if i >= 0}
    aligned = dict(zip(table.uid, table.aligned, strict=True))
    return [{"dataset": dataset, "uid": c.uid, "emotion": c.emotion, "frames": c.n_frames, "audio": c.audio,
             "source_uid": source[c.uid], "source_video": aligned[source[c.uid]], "source_frame": 0} for c in clips]


@torch.no_grad()
def generate_pretrain(a2et_model: Path | str, latent_model: Path | str, params: Params, basis: ExpressionBasis,
                      clips: list[A2ETClip], dataset: str) -> list[np.ndarray]:
    """Videos of the emotion-agnostic pretrained model (A2ET + RePos-Net); LRW with relative keypoints."""
    a2et, generator = load_model(a2et_model, params), load_inference_model(latent_model).generator
    return [generate_clip(generator, a2et_predictor(a2et, basis, clip), clip, params.signal.window_frames // 2, basis,
                          relative=dataset == "LRW", batch_size=params.a2et_train.eval_batch_size).frames
            for clip in clips]


@torch.no_grad()
def generate_adapted(model_path: Path | str, params: Params, basis: ExpressionBasis, clips: list[A2ETClip],
                     dataset: str) -> list[np.ndarray]:
    """Videos of an adapted variant: MEAD clips with their emotion; LRW neutral with relative keypoints."""
    model = load_emotional_model(model_path, params, basis)
    z = latent_code(model, params.seed)
    half = params.signal.window_frames // 2
    return [emotional_video(model, clip, emotion_codes(model, {clip.emotion if dataset == "MEAD" else "neutral": 1.0},
                                                         z), half, relative=dataset == "LRW") for clip in clips]


def write_videos(videos: list[np.ndarray], clips: list[A2ETClip], fps: float, folder: Path) -> None:
    """Each generated video as ``<uid>.mp4`` with its clip's audio (the user-study kit and the eye need them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for video, clip in zip(videos, clips, strict=True):
        h, w = video.shape[1:3]
        write_video(folder / f"{clip.uid}.mp4", iter(video), fps, w, h, audio=read_audio(clip.audio))


@torch.no_grad()
def generate_reconstruction(latent_model: Path | str, clips: list[A2ETClip],
                            render_batch: int = RENDER_BATCH) -> list[np.ndarray]:
    """Each clip's frames re-rendered from its source image by the latent model ``latent_model``, driven by the
    keypoints its detector and head-pose estimator find in those frames (:func:`eat.latent.evaluate.reenact`)."""
    nets = load_inference_model(latent_model)
    videos = []
    for clip in clips:
        source = to_tensor(clip.source.frame[None])
        out = torch.cat([reenact(nets, source, to_tensor(clip.frames[s:s + render_batch]))["prediction"]
                         for s in range(0, len(clip.frames), render_batch)])
        videos.append((out.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy())
    return videos


def model_videos(name: str, params: Params, basis: ExpressionBasis, clips: list[A2ETClip], dataset: str, *,
                 a2et_model: Path | str, latent_models: dict[str, Path | str], adaptation_dir: Path | str
                 ) -> list[np.ndarray]:
    """The test videos of model ``name``: the ground truth itself, its static source, a latent model's reconstruction
    (``latent_models``: variant → model.pt), the pretrained model, or an adapted variant."""
    latent_model = latent_models["enhanced"]
    if name == "ground_truth":
        return [c.frames for c in clips]
    if name == STATIC:
        return [np.repeat(c.source.frame[None], c.n_frames, axis=0) for c in clips]
    if name in LATENT_RECONSTRUCTIONS:
        return generate_reconstruction(latent_models[LATENT_RECONSTRUCTIONS[name]], clips)
    if name == "pretrain":
        return generate_pretrain(a2et_model, latent_model, params, basis, clips, dataset)
    return generate_adapted(Path(adaptation_dir) / name / "model.pt", params, basis, clips, dataset)


def _align(new_detector: DetectorFactory, frames: np.ndarray) -> AlignedVideo:
    return align_fresh(frames, new_detector, REFERENCE_FACE)


def aligned_truth(clips: list[A2ETClip], new_detector: DetectorFactory, workers: int = 1) -> dict[str, AlignedVideo]:
    """Each clip's ground truth aligned once (metrics.align), in parallel, reused for every model scored on it."""
    outcomes = map_clips(partial(_align, new_detector), [c.frames for c in clips], desc="align ground truth",
                         workers=workers)
    failed = [f"{c.uid}: {o.error}" for c, o in zip(clips, outcomes, strict=True) if o.error is not None]
    if failed:
        raise RuntimeError("aligning the ground truth failed:\n" + "\n".join(failed))
    return {c.uid: o.value for c, o in zip(clips, outcomes, strict=True)}


@dataclass(frozen=True)
class ClipJob:
    """One video to score against its test clip: the input of one Ray task."""

    uid: str
    video: np.ndarray              # (T, H, W, 3) uint8 RGB, any size and length
    truth: np.ndarray              # (T', S, S, 3) uint8, the clip's ground truth
    truth_aligned: AlignedVideo    # its alignment (:func:`aligned_truth`)
    mel: np.ndarray                # (T', n_mels), the clip's own audio, for the sync expert
    audio: str                     # the clip's 16 kHz wav, for SyncNet v2
    first_is_source: bool = False  # frame 0 is the source image itself (MEAD neutral clips, LRW): an input


@cache
def sync_embedder(expert_path: str) -> tuple[str, SyncEmbedder]:
    """(column, embedder) of :func:`eat.sync.embedders.load_embedder`, loaded once per process (each Ray worker)."""
    return load_embedder(expert_path=expert_path)


@dataclass(frozen=True)
class ClipScorer:
    """Scores one :class:`ClipJob` (a Ray task): PSNR, SSIM, M-LMD, F-LMD and the FID frames on aligned crops
    (the ground truth's alignment reused), then sync confidence against the clip's own audio. Torch and BLAS run
    on one thread, as in a Ray worker, so the numbers are the same bits whether a clip is scored inline or on Ray."""

    sync_expert: str
    new_detector: DetectorFactory

    def __call__(self, job: ClipJob) -> ImageResult:
        skip = int(job.first_is_source)     # an input is not scored: a held source would score PSNR = ∞ on it
        truth = job.truth_aligned
        with threadpool_limits(limits=1), reproducible_torch(threads=1):
            result = image_metrics(job.uid, job.video[skip:], job.truth[skip:], self.new_detector, REFERENCE_FACE,
                                   real_aligned=AlignedVideo(truth.frames[skip:], truth.landmarks[skip:],
                                                             truth.found[skip:]))
            column, embed = sync_embedder(self.sync_expert)
            samples = read_audio(job.audio, AVClip.rate)[0] if column == "Sync" else None
            score = sync_score(AVClip(job.uid, job.video, mel=job.mel, samples=samples), embed)
        return ImageResult({**result.row, **sync_row(job.uid, column, score)}, result.fid_fake, result.fid_real)


def score_clips(videos: list[np.ndarray], clips: list[A2ETClip], dataset: str, truth: dict[str, AlignedVideo],
                scorer: ClipScorer, classifier, workers: int = 1) -> tuple[pd.DataFrame, list, dict[str, str]]:
    """(per-clip rows, their FID frame pairs, {uid: why it failed}) of ``videos`` against the clips' ground truth:
    :class:`ClipScorer` per clip in parallel, then the emotion classifier on the scored MEAD videos at once."""
    jobs = [ClipJob(c.uid, v, c.frames, truth[c.uid], c.mel, c.audio, np.array_equal(c.source.frame, c.frames[0]))
            for v, c in zip(videos, clips, strict=True)]
    outcomes = map_clips(scorer, jobs, desc=f"score {dataset}", workers=workers)
    ok = [i for i, o in enumerate(outcomes) if o.error is None]
    table = pd.DataFrame([{**outcomes[i].value.row, "dataset": dataset, "emotion": clips[i].emotion} for i in ok])
    if dataset == "MEAD" and len(table):
        table["emotion_pred"] = [EMOTIONS[i] for i in predict_videos(classifier, [videos[i] for i in ok])]
    return table, [outcomes[i].value for i in ok], {o.item.uid: o.error for o in outcomes if o.error is not None}


def baseline_methods(baselines_dir: Path | str | None) -> list[str]:
    """The methods with a folder under ``baselines_dir`` (none when it is unset or absent), sorted."""
    folder = Path(baselines_dir) if baselines_dir else None
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder and folder.is_dir() else []


def baseline_videos(folder: Path, clips: list[A2ETClip]) -> tuple[list[np.ndarray], list[A2ETClip], list[dict]]:
    """(videos, their clips, skipped) of ``folder/<uid>.mp4`` for each clip, decoded at any size and length; a
    missing or unreadable file is skipped (``{"uid", "path", "reason"}``), never the end of the run."""
    videos, kept, skipped = [], [], []
    for clip in clips:
        path = folder / f"{clip.uid}.mp4"
        try:
            videos.append(read_video(path))
            kept.append(clip)
        except MediaError as exc:
            reason = " / ".join(line.strip() for line in str(exc).removeprefix(f"{path}: ").splitlines())
            skipped.append({"uid": clip.uid, "path": str(path), "reason": reason})
    return videos, kept, skipped


def score_baseline(folder: Path, clips: list[A2ETClip], dataset: str, truth: dict[str, AlignedVideo],
                   scorer: ClipScorer, classifier, workers: int = 1) -> tuple[pd.DataFrame, list, list[dict]]:
    """(per-clip rows, FID frame pairs, skipped) of one baseline folder's videos of ``clips``: a clip whose video
    is missing, unreadable or cannot be scored is skipped (``{"uid", "path", "reason"}``) with a warning."""
    videos, kept, lost = baseline_videos(folder, clips)
    rows, fid, failed = score_clips(videos, kept, dataset, truth, scorer, classifier, workers)
    lost += [{"uid": uid, "path": str(folder / f"{uid}.mp4"), "reason": why.splitlines()[0]}
             for uid, why in failed.items()]
    for item in lost:
        log.warning("baseline %s: %s clip %s left out: %s: %s", folder.name, dataset, item["uid"], item["path"],
                    item["reason"])
    return rows, fid, lost


def ground_truth_emotions(params: Params, latent_table: Path | str, audio_table: Path | str, classifier
                          ) -> pd.DataFrame:
    """Rows (uid, emotion, emotion_pred) of the classifier on the video of *every* MEAD test clip, read at the size
    of the generated videos (``signal.image_size``) as in :func:`aligned_truth`'s clips. The Ground Truth row's
    Acc_emo needs nothing generated, so it is not limited to the ``evaluate.mead_clips`` sample."""
    table = a2et_table(latent_table, audio_table)
    table = table[(table.dataset == "MEAD") & (table.split == "test")].sort_values("uid").reset_index(drop=True)
    pred = predict_videos(classifier, [read_aligned_frames(path, params.signal.image_size)
                                       for path in table.aligned_arrays])
    return pd.DataFrame({"uid": table.uid, "emotion": table.emotion, "emotion_pred": [EMOTIONS[i] for i in pred]})


def emotion_summary(rows: pd.DataFrame) -> dict[str, Any]:
    """``"MEAD/<Acc_emo…>"`` of per-clip rows with ``emotion`` and ``emotion_pred`` (:func:`metrics.table.aggregate`),
    their count as ``acc_emo_clips``: it overrides the model's clip count for Acc_emo alone."""
    numbers = aggregate(rows[["emotion", "emotion_pred"]], EMOTIONS)
    numbers["acc_emo_clips"] = numbers.pop("clips")
    return {f"MEAD/{k}": v for k, v in numbers.items()}


def summary(rows: pd.DataFrame, fid: list, space, dataset: str) -> dict[str, Any]:
    """``"<dataset>/<metric>"`` aggregates of one model's per-clip rows and FID frames."""
    numbers = aggregate(rows.drop(columns=["dataset"], errors="ignore"), EMOTIONS) | fid_metric(space, fid)
    return {f"{dataset}/{k}": v for k, v in numbers.items()}


def scoring_session(workers: int, address: str) -> AbstractContextManager:
    """One Ray session for the whole stage (not one per model), so workers keep their loaded sync network."""
    return nullcontext() if workers == 1 else ray_session(address, num_cpus=workers or None)


def write_summary(numbers: dict[str, Any], path: Path, skipped: list[dict] | None = None) -> None:
    """metrics.json (eat.scoring.write_metrics); a baseline's also lists its ``skipped`` clips, a list that
    ``dvc metrics`` ignores."""
    write_metrics(numbers, path)
    if skipped is not None:
        write_text_atomic(path, json.dumps(json.loads(path.read_text()) | {"skipped": skipped}, indent=2) + "\n")


def evaluate_models(params: Params, models: list[str], *, latent_table: Path | str, audio_table: Path | str,
                    latent_model: Path | str, pca_dir: Path | str, a2et_model: Path | str,
                    adaptation_dir: Path | str, sync_expert: Path | str, emotion_classifier: Path | str,
                    out_dir: Path | str, baselines_dir: Path | str | None = None,
                    osfv_model: Path | str | None = None) -> dict[str, dict[str, Any]]:
    """Stage ``evaluate``: per dataset, load the test clips and align their ground truth once, then generate and
    score them with every model, and score every baseline folder's videos of them; ``<out_dir>/<model>/`` gets
    metrics.json, the per-clip tables and (our models) the MEAD videos; ``<out_dir>/test_clips.csv`` lists the
    clips (what a baseline must generate). ``latent_model`` is the enhanced latent model everything downstream
    uses; ``osfv_model`` the OSFV one, needed only for ``latent_osfv``."""
    basis = ExpressionBasis.load(pca_dir, params.latent.pca_components)
    out_dir = Path(out_dir)
    classifier = load_emotion_classifier(emotion_classifier)
    try:
        space = inception_fid()
    except WeightsError:
        space = emotion_fan_features(classifier)
    scorer, workers = ClipScorer(str(sync_expert), detector_factory("mediapipe")), params.evaluate.workers
    methods = baseline_methods(baselines_dir)
    summaries: dict[str, dict[str, Any]] = {m: {} for m in [*models, *(BASELINE_PREFIX + b for b in methods)]}
    skipped: dict[str, list[dict]] = {BASELINE_PREFIX + b: [] for b in methods}
    listing: list[dict] = []
    with scoring_session(workers, params.ray.address):
        for dataset in DATASETS:
            clips = test_clips(params, dataset, latent_table, audio_table, basis, latent_model,
                               params.evaluate.mead_clips if dataset == "MEAD" else params.evaluate.lrw_clips)
            if not clips:
                continue
            listing += listed_clips(clips, dataset, latent_table, audio_table)
            truth = aligned_truth(clips, scorer.new_detector, workers)
            for name in tqdm(models, desc=f"evaluate {dataset}", unit="model"):
                videos = model_videos(name, params, basis, clips, dataset, a2et_model=a2et_model,
                                      latent_models={"enhanced": latent_model, "osfv": osfv_model},
                                      adaptation_dir=adaptation_dir)
                rows, fid, failed = score_clips(videos, clips, dataset, truth, scorer, classifier, workers)
                if failed:
                    raise RuntimeError(f"{name}: scoring {dataset} clips failed:\n" +
                                       "\n".join(f"{uid}: {why}" for uid, why in failed.items()))
                write_rows(rows, out_dir / name / f"{dataset.lower()}_clips.parquet")
                if dataset == "MEAD":
                    write_videos(videos, clips, params.signal.fps, out_dir / name / "videos")
                summaries[name] |= summary(rows, fid, space, dataset)
            for method in methods:
                name = BASELINE_PREFIX + method
                rows, fid, lost = score_baseline(Path(baselines_dir) / method, clips, dataset, truth, scorer,
                                                 classifier, workers)
                write_rows(rows, out_dir / name / f"{dataset.lower()}_clips.parquet")
                summaries[name] |= summary(rows, fid, space, dataset) | {f"{dataset}/skipped": len(lost)}
                skipped[name] += [{"dataset": dataset, **item} for item in lost]
        if "ground_truth" in models:
            rows = ground_truth_emotions(params, latent_table, audio_table, classifier)
            write_rows(rows, out_dir / "ground_truth" / EMOTION_ROWS)
            summaries["ground_truth"] |= emotion_summary(rows)
    write_csv_atomic(listing, out_dir / "test_clips.csv", columns=list(TEST_CLIP_COLUMNS))
    for name, numbers in summaries.items():
        write_summary(numbers, out_dir / name / "metrics.json", skipped.get(name))
    return summaries
