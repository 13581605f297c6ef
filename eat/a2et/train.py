"""A2ET pretraining on Ray Train (stage ``train_a2et@<phase>``; Sec. 3.1.2 and 3.3).

Phase ``latent`` trains A2ET from scratch with L_lat alone on single windows. Phase ``full`` continues
from it with the full loss on runs of ``sync_expert.frames`` consecutive frames, rendered by the frozen
RePos-Net of the enhanced latent model from each clip's source frame and scored by the frozen lip-sync
expert (:mod:`eat.a2et.objective`). The keypoint detector that makes the source token is frozen too.

Pretraining data: every clip of the train split (MEAD neutral and emotional, LRW, VoxCeleb2), uniform
over frames (the official mix is 90 % VoxCeleb2, 10 % MEAD; the embedded data has few VoxCeleb2 clips).

Checkpoints, resume and data parallelism: :mod:`eat.ray_train`. A resumed run ends with the same weights
as an uninterrupted one: batches and dropout are functions of (seed, step).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from eat import ray_train
from eat.a2et.data import A2ETClip, WindowSampler, a2et_table, load_clip, run_batch, split_tables, window_batch
from eat.a2et.objective import latent_terms, render, render_terms
from eat.config import Params
from eat.io.atomic import write_text_atomic
from eat.io.hashing import file_sha256, settings_digest
from eat.io.reproducible import reproducible_torch
from eat.io.tables import write_csv_atomic
from eat.io.torch_files import save_torch_atomic
from eat.latent.pca import ExpressionBasis
from eat.latent.train import load_inference_model
from eat.latent.vgg import load_vgg19
from eat.models.a2et import A2ET
from eat.models.keypoints import compose_keypoints
from eat.models.pyramid import ImagePyramid
from eat.ray_runtime import ray_session
from eat.ray_train import peak_rss_mib
from eat.render_clip import a2et_predictor, generate_clip

PHASES = ("latent", "full")


def run_digest(params: Params, phase: str, clips: list[A2ETClip], inputs: dict[str, str | None]) -> str:
    """What a checkpoint depends on: seed, phase, configs, the input models' bytes and the training clips."""
    cfg = params.a2et_train.model_dump(exclude={"checkpoint_every", "log_every", "eval_clips", "eval_batch_size"})
    return settings_digest({"seed": params.seed, "phase": phase, "a2et": params.a2et.model_dump(), "train": cfg,
                            "optim": params.optim.model_dump(), "signal": params.signal.model_dump(),
                            "latent": params.latent.model_dump(),
                            "inputs": {k: file_sha256(v) if v else None for k, v in inputs.items()}},
                           (part for clip in clips for part in (clip.uid, clip.pe, clip.mel, clip.speech, clip.pose,
                                                                clip.source.logits, clip.source.keypoints)))


def build_a2et(params: Params) -> A2ET:
    """A2ET as pretrained: no prompts (emotion-agnostic), sizes from params."""
    return A2ET(params.a2et, params.latent, params.signal, prompt_mode="none")


class Trainer(ray_train.CheckpointedTrainer):
    """A2ET, its optimiser and schedule for one phase, with save/restore of the whole state."""

    saved_parts = ("a2et", "opt", "sched")

    def __init__(self, params: Params, steps: int, seed: int, device: torch.device):
        torch.manual_seed(seed)
        self.a2et = build_a2et(params).to(device)
        self.opt = torch.optim.Adam(self.a2et.parameters(), lr=params.optim.lr_a2et, betas=tuple(params.optim.betas))
        milestones = [int(f * steps) for f in params.a2et_train.lr_milestones]
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, milestones, gamma=0.1)
        self.step = 0
        self.log: list[dict[str, float]] = []


class RenderingParts:
    """The frozen networks of the ``full`` phase: RePos-Net, the lip-sync expert, VGG19 and the image pyramid."""

    def __init__(self, params: Params, latent_model: str, sync_expert: str, device: torch.device):
        # local: scipy (about 0.6 s) would otherwise load in every Ray Train worker, which imports this module,
        # and only the rendering phases need the sync expert (as sklearn in eat/latent/pca.py)
        from eat.sync.train import load_sync_expert

        self.generator = load_inference_model(latent_model, device).generator.requires_grad_(False)
        self.expert = load_sync_expert(sync_expert, device)
        vgg, self.vgg_info = load_vgg19(params.a2et_train.vgg_weights, params.seed)
        self.vgg = vgg.to(device)
        self.pyramid = ImagePyramid(params.a2et_train.pyramid_scales).to(device)


def phase_losses(params: Params, phase: str, trainer: Trainer, basis: ExpressionBasis, clips: list[A2ETClip],
                 sampler: WindowSampler, step: int, rank: int, world: int, parts: RenderingParts | None,
                 device: torch.device) -> dict[str, torch.Tensor]:
    """The weighted loss terms of this worker's slice of global batch ``step``."""
    cfg = getattr(params.a2et_train, phase)
    half = params.signal.window_frames // 2
    run_clip, run_start = sampler(step, cfg.batch_size)
    mine = np.arange(cfg.batch_size)[rank::world]
    run_clip, run_start = run_clip[mine], run_start[mine]
    clip_index, frame = sampler.expand(run_clip, run_start)
    batch = window_batch(clips, clip_index, frame, half, device)
    face = trainer.a2et.face_feature(batch.source_logits)
    pe_hat = trainer.a2et(batch.speech, batch.pose, batch.pose_image, batch.mel, face)
    kp_hat = compose_keypoints(batch.canonical, batch.rotation, batch.translation, basis.decode(pe_hat))
    terms = latent_terms(cfg.latent_weight, kp_hat, batch.keypoints, cfg.pca_weight, pe_hat, batch.pe)
    if parts is not None:
        runs = run_batch(clips, run_clip, run_start, sampler.length, device)
        prediction = render(parts.generator, runs.source, runs.kp_source, kp_hat, sampler.length)
        terms.update(render_terms(cfg, prediction, runs, parts, params.a2et_train.face_margin))
    return terms


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train loop of one worker; ``config`` is built by :func:`fit_phase`."""
    import ray  # local: Ray is heavy and only the training workers need it
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    params = Params.model_validate(config["params"])
    phase, digest, seed = config["phase"], config["digest"], params.seed
    cfg, train = getattr(params.a2et_train, phase), params.a2et_train
    with reproducible_torch(train.threads_per_worker, deterministic="warn"):
        device = ray.train.torch.get_device()
        clips: list[A2ETClip] = ray.get(config["clips"])
        basis: ExpressionBasis = ray.get(config["basis"])

        trainer = Trainer(params, cfg.steps, seed, device)
        state = ray_train.resume_state(config)
        if state is not None:
            trainer.load_state_dict(state)
        elif config["init"]:
            trainer.a2et.load_state_dict(torch.load(config["init"], map_location=device, weights_only=True)["a2et"])
        parts = RenderingParts(params, config["latent_model"], config["sync_expert"], device) if cfg.renders else None
        sampler = WindowSampler(clips, params.sync_expert.frames if cfg.renders else 1, seed)

        trainer.a2et.train()

        def step_fn(step: int) -> dict[str, float]:
            torch.manual_seed(seed * 1_000_003 + step)
            terms = phase_losses(params, phase, trainer, basis, clips, sampler, step, rank, world, parts, device)
            loss = sum(terms.values())
            ray_train.optimiser_step(loss, trainer.a2et, trainer.a2et.parameters(), trainer.opt, train.grad_clip, world)
            trainer.sched.step()
            return {**{k: float(v.detach()) for k, v in terms.items()}, "total": float(loss.detach())}

        ray_train.run_steps(trainer, cfg.steps, step_fn, log_every=train.log_every,
                            checkpoint_every=train.checkpoint_every, digest=digest, rank=rank,
                            desc=f"train_a2et@{phase}",
                            extra_state={"vgg": parts.vgg_info} if parts is not None else None)


def load_clips(params: Params, table: pd.DataFrame, basis: ExpressionBasis, latent_model: str,
               with_frames: bool) -> list[A2ETClip]:
    """Every clip of ``table`` in memory (see :func:`eat.a2et.data.load_clip`)."""
    nets = load_inference_model(latent_model)
    return [load_clip(row, basis, nets, params.signal.image_size, params.crop_align.size,
                      params.a2et.pose_image_size, with_frames) for row in table.itertuples(index=False)]


def fit_phase(params: Params, phase: str, clips: list[A2ETClip], basis: ExpressionBasis, storage: Path,
              inputs: dict[str, str | None]) -> dict[str, Any]:
    """Run (or resume) one phase on Ray Train; returns rank 0's final state."""
    import ray  # local: see train_worker

    train = params.a2et_train
    digest = run_digest(params, phase, clips, inputs)
    with ray_train_session(params, train.num_workers * train.threads_per_worker):
        return ray_train.fit(
            train_worker,
            {"params": params.model_dump(), "phase": phase, "clips": ray.put(clips), "basis": ray.put(basis),
             **{k: str(Path(v).resolve()) if v else None for k, v in inputs.items()}},
            storage=storage, name=phase, digest=digest, steps=getattr(train, phase).steps,
            num_workers=train.num_workers, threads_per_worker=train.threads_per_worker, ray=params.ray)


def ray_train_session(params: Params, cpus: int):
    """Ray for the driver's ``ray.put`` (the same session :func:`eat.ray_train.fit` then reuses)."""
    return ray_session(params.ray.address, num_cpus=max(params.ray.workers, cpus))


def save_model(state: dict[str, Any], params: Params, phase: str, path: Path) -> None:
    """``model.pt``: A2ET's weights and the configs that size it (eat/schema.py)."""
    save_torch_atomic({"a2et": state["a2et"], "phase": phase, "steps": state["step"],
                       "config": {"a2et": params.a2et.model_dump(), "latent": params.latent.model_dump(),
                                  "signal": params.signal.model_dump()}}, path)


def load_model(path: Path | str, params: Params, device: str | torch.device = "cpu") -> A2ET:
    """The pretrained A2ET of a ``model.pt`` in eval mode."""
    a2et = build_a2et(params).to(device)
    a2et.load_state_dict(torch.load(path, map_location=device, weights_only=True)["a2et"])
    return a2et.eval()


def train_a2et(params: Params, phase: str, *, latent_table: Path | str, audio_table: Path | str,
               latent_model: Path | str, pca_dir: Path | str, sync_expert: Path | str, init: Path | str | None,
               out_dir: Path | str, reports_dir: Path | str) -> dict[str, Any]:
    """Stage ``train_a2et@<phase>``: train or resume, save ``model.pt``, log, held-out metrics and video.

    ``init``: the phase-1 ``model.pt`` the full phase continues from (None: from scratch).
    ``metrics.json`` holds deterministic numbers only; wall time and memory go to ``timing.json``.
    """
    # local: the held-out evaluation (the driver's alone) pulls scipy and scikit-image, which every Ray Train
    # worker would otherwise load at start-up (see RenderingParts)
    from eat.a2et.evaluate import evaluate_clips, pose_expression_errors, side_by_side_video, summarise
    from eat.sync.embedders import expert_embedder
    from eat.sync.train import load_sync_expert

    if phase not in PHASES:
        raise ValueError(f"unknown A2ET phase {phase!r}: expected one of {', '.join(PHASES)}")
    for what, file in (("latent model", latent_model), ("lip-sync expert", sync_expert), ("phase-1 A2ET", init)):
        if file is not None and not Path(file).is_file():
            raise FileNotFoundError(f"{file}: {what} not found (run the stage that writes it first)")
    start = time.perf_counter()
    out_dir, reports_dir = Path(out_dir), Path(reports_dir)
    cfg = getattr(params.a2et_train, phase)
    basis = ExpressionBasis.load(pca_dir, params.latent.pca_components)
    train_table, held_table = split_tables(a2et_table(latent_table, audio_table))
    clips = load_clips(params, train_table, basis, str(latent_model), with_frames=cfg.renders)
    loaded = time.perf_counter()
    inputs = {"latent_model": str(latent_model), "sync_expert": str(sync_expert) if cfg.renders else None,
              "init": str(init) if init else None}
    state = fit_phase(params, phase, clips, basis, out_dir / "ray", inputs)
    trained = time.perf_counter()
    save_model(state, params, phase, out_dir / "model.pt")
    write_csv_atomic(state["log"], reports_dir / "train_log.csv")

    metrics: dict[str, Any] = {"phase": phase, "steps": state["step"], "train_clips": len(clips),
                               "train_clips_by_dataset": {str(k): int(v) for k, v in
                                                          train_table.dataset.value_counts().sort_index().items()},
                               "loss_first": state["log"][0]["total"], "loss_last": state["log"][-1]["total"],
                               "vgg19": state.get("vgg", "not used (no rendering loss in this phase)"),
                               "lip_sync_expert": str(sync_expert),
                               "heldout": {"clips": 0}}
    held = evaluation_subset(held_table, params.a2et_train.eval_clips)
    if not held.empty:
        torch.manual_seed(params.seed)
        half, batch = params.signal.window_frames // 2, params.a2et_train.eval_batch_size
        held_clips = load_clips(params, held, basis, str(latent_model), with_frames=True)
        a2et, generator = load_model(out_dir / "model.pt", params), load_inference_model(latent_model).generator
        first = held_clips[0]
        if cfg.renders:
            embed = expert_embedder(load_sync_expert(sync_expert))
            rows, generated = evaluate_clips(a2et, generator, basis, held_clips, embed, half, batch)
            example = generated[first.uid]
        else:
            rows = pose_expression_errors(a2et, basis, held_clips, half, batch)
            example = generate_clip(generator, a2et_predictor(a2et, basis, first), first, half, basis,
                                    batch_size=batch).frames
        side_by_side_video(first.frames, example, first.audio, params.signal.fps, reports_dir / "heldout_example.mp4")
        metrics["heldout"] = {"clips": len(rows), "identities": sorted({u.split("__")[1] for u in held.uid}),
                              **summarise(rows)}
        write_csv_atomic(rows, reports_dir / "heldout_clips.csv", decimals=4)
    write_text_atomic(reports_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    timing = {"load_seconds": round(loaded - start, 1), "train_seconds": round(trained - loaded, 1),
              "total_seconds": round(time.perf_counter() - start, 1),
              "seconds_per_step": round(float(np.mean([r["seconds_per_step"] for r in state["log"]])), 4),
              "peak_rss_mib_worker": state.get("peak_rss_mib"), "peak_rss_mib_driver": peak_rss_mib(),
              "num_workers": params.a2et_train.num_workers}
    write_text_atomic(reports_dir / "timing.json", json.dumps(timing, indent=2) + "\n")
    return {**metrics, "timing": timing}


def evaluation_subset(table: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` clips spread evenly over the uid-sorted held-out table (all when ``n`` is 0 or larger)."""
    if not n or n >= len(table):
        return table
    return table.iloc[np.linspace(0, len(table) - 1, n).round().astype(int)].reset_index(drop=True)
