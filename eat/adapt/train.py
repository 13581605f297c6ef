"""Emotional adaptation on Ray Train (stage ``train_adaptation``, every variant of ``adaptation_runs``; Sec. 3.2, 3.3).

Starting from the pretrained A2ET (``train_a2et@full``) and the enhanced latent model, only the variant's
adaptation parameters train (:meth:`eat.adapt.model.EmotionalModel.trainable`): the mapper always, EDN and
the EAMs when the variant has them. Data: MEAD training clips with their emotion label, generated from a
neutral source (:mod:`eat.adapt.data`); a batch is B runs of ``sync_expert.frames`` consecutive frames, each
run with its own latent code z ~ N(0, I) (seeded by the step). Losses (variant's subset, official weights):
keypoint latent 100 (EDN's ΔE is supervised through K only), L1 on the face 10, perceptual [10]×5, sync 10.

All variants train in one Ray Train run, one after another in the same workers, which load the shared data and
the frozen networks once: a run per variant spent 9-10 s of every variant's 22 s starting and stopping its worker
group. A checkpoint holds the variant in training and the final state of each finished one, so a killed stage
resumes inside the variant it was in and keeps the others.

Fig. 5: for variants with ``curve``, the adaptation weights are kept at ``curve_points`` steps along training
with the training seconds spent so far; :func:`eat.adapt.heldout.tuning_curve` scores them after training.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from eat import ray_train
from eat.a2et.data import A2ETClip, WindowSampler, a2et_table, run_batch, window_batch
from eat.a2et.objective import latent_terms, render_terms
from eat.a2et.train import RenderingParts, load_clips, ray_train_session
from eat.adapt.checkpoint import adaptation_state, build_model, load_emotional_model, save_model
from eat.adapt.data import adaptation_clips, adaptation_subset, fraction_mask, without_source
from eat.adapt.heldout import heldout_clips, tuning_curve
from eat.adapt.model import EmotionalModel
from eat.config import A2ETPhaseConfig, AdaptationVariant, Params
from eat.emotion.train import load_emotion_classifier
from eat.io.atomic import write_text_atomic
from eat.io.hashing import file_sha256, settings_digest
from eat.io.reproducible import reproducible_torch
from eat.io.tables import write_csv_atomic
from eat.io.torch_files import save_torch_atomic
from eat.latent.pca import ExpressionBasis
from eat.models.adaptation import parameter_shares

RUN_NAME = "variants"
"""The Ray Train run (folder under the stage's checkpoints) in which every variant trains."""


def loss_weights(params: Params, variant: AdaptationVariant) -> A2ETPhaseConfig:
    """The rendering-loss weights of ``variant`` in the form :func:`eat.a2et.objective.render_terms` reads."""
    cfg, on = params.adaptation_train, set(variant.losses)
    return A2ETPhaseConfig(steps=cfg.steps, batch_size=cfg.batch_size, pca_weight=0.0,
                           latent_weight=cfg.latent_weight if "latent" in on else 0.0,
                           l1_weight=cfg.l1_weight if "l1" in on else 0.0,
                           perceptual_weights=cfg.perceptual_weights if "perceptual" in on else [0.0] * 5,
                           sync_weight=cfg.sync_weight if "sync" in on else 0.0)


class Trainer:
    """The variant's model, Adam over its adaptation parameters, step, log and Fig. 5 snapshots."""

    def __init__(self, params: Params, variant: AdaptationVariant, basis: ExpressionBasis, latent_model: str,
                 a2et_model: str, seed: int, device: torch.device, offset: int = 0):
        """``offset``: the run's steps before this variant's (its checkpoints' ``step`` counts the whole run)."""
        torch.manual_seed(seed)
        self.model = build_model(params, variant, basis, latent_model, device)
        self.model.load_pretrained(torch.load(a2et_model, map_location=device, weights_only=True)["a2et"])
        self.opt = torch.optim.Adam(self.model.trainable(), lr=params.adaptation_train.lr,
                                    betas=tuple(params.optim.betas))
        self.step, self.seconds, self.offset = 0, 0.0, offset
        self.log: list[dict[str, float]] = []
        self.snapshots: list[dict[str, Any]] = []

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.offset + self.step, "variant_step": self.step, "seconds": self.seconds, "log": self.log,
                "snapshots": self.snapshots, "adaptation": adaptation_state(self.model), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["adaptation"], strict=False)
        self.opt.load_state_dict(state["opt"])
        self.step, self.seconds = int(state["variant_step"]), float(state["seconds"])
        self.log, self.snapshots = list(state["log"]), list(state["snapshots"])

    def final_state(self) -> dict[str, Any]:
        """What a finished variant keeps in the run's checkpoints (not the optimiser)."""
        state = self.state_dict()
        del state["opt"]
        return {**state, "step": self.step, "peak_rss_mib": ray_train.peak_rss_mib()}


def curve_steps(steps: int, points: int) -> list[int]:
    """The steps (including 0 and the last) at which Fig. 5 snapshots are kept."""
    return sorted({int(round(s)) for s in np.linspace(0, steps, points)})


def adaptation_losses(params: Params, model: EmotionalModel, weights: A2ETPhaseConfig, clips: list[A2ETClip],
                      labels: np.ndarray, sampler: WindowSampler, parts, step: int, rank: int, world: int,
                      device: torch.device) -> dict[str, torch.Tensor]:
    """Weighted loss terms of this worker's slice of global batch ``step``."""
    cfg = params.adaptation_train
    run_clip, run_start = sampler(step, cfg.batch_size)
    z = torch.randn(cfg.batch_size, model.z_dim, generator=torch.Generator().manual_seed(params.seed * 7919 + step))
    mine = np.arange(cfg.batch_size)[rank::world]
    run_clip, run_start, z = run_clip[mine], run_start[mine], z[mine].to(device)
    clip_index, frame = sampler.expand(run_clip, run_start)
    batch = window_batch(clips, clip_index, frame, params.signal.window_frames // 2, device)
    e0, prompts = model.codes(z, torch.from_numpy(labels[run_clip]).to(device))
    e0, prompts = e0.repeat_interleave(sampler.length, 0), prompts.repeat_interleave(sampler.length, 0)
    _, kp = model.keypoints(batch, e0, prompts)
    terms = latent_terms(weights.latent_weight, kp, batch.keypoints)
    if weights.renders:
        runs = run_batch(clips, run_clip, run_start, sampler.length, device)
        prediction = model.render(runs.source, runs.kp_source, kp, e0, sampler.length)
        terms.update(render_terms(weights, prediction, runs, parts, params.a2et_train.face_margin))
    return terms


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train loop of one worker: every variant of ``config["names"]`` in turn; ``config`` is built by
    :func:`fit_variants`. Reported states: the variant in training (``variant``, its trainer's state) and
    ``finished`` (name → :meth:`Trainer.final_state`)."""
    import ray  # local: Ray only where a run starts: importing it is slow
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    params = Params.model_validate(config["params"])
    with reproducible_torch(params.adaptation_train.threads_per_worker, deterministic="warn"):
        device = ray.train.torch.get_device()
        clips, labels = ray.get(config["clips"])
        basis: ExpressionBasis = ray.get(config["basis"])
        parts = RenderingParts(params, config["latent_model"], config["sync_expert"], device)
        state = ray_train.resume_state(config) or {}
        finished: dict[str, dict[str, Any]] = dict(state.get("finished", {}))
        for index, name in enumerate(config["names"]):
            if name not in finished:
                subset = config["subsets"][name]
                trainer = Trainer(params, params.adaptation_variants[name], basis, config["latent_model"],
                                  config["a2et_model"], params.seed, device,
                                  offset=index * params.adaptation_train.steps)
                if state.get("variant") == name:
                    trainer.load_state_dict(state)
                train_variant_steps(params, name, trainer, [clips[i] for i in subset], labels[subset], parts,
                                    config["digest"], finished, rank, world, device)
                finished[name] = trainer.final_state()


def train_variant_steps(params: Params, name: str, trainer: Trainer, clips: list[A2ETClip], labels: np.ndarray,
                        parts: RenderingParts, digest: str, finished: dict[str, dict[str, Any]], rank: int,
                        world: int, device: torch.device) -> None:
    """Train one variant from ``trainer``'s step to ``adaptation_train.steps``, checkpoints carrying ``finished``."""
    cfg, seed = params.adaptation_train, params.seed
    variant = params.adaptation_variants[name]
    weights = loss_weights(params, variant)
    sampler = WindowSampler(clips, params.sync_expert.frames, seed)
    snapshot_at = set(curve_steps(cfg.steps, cfg.curve_points)) if variant.curve else set()
    if trainer.step == 0 and 0 in snapshot_at:
        trainer.snapshots.append({"step": 0, "seconds": 0.0, "adaptation": adaptation_state(trainer.model)})
    trainer.model.train()

    def step_fn(step: int) -> dict[str, float]:
        start = time.perf_counter()
        torch.manual_seed(seed * 1_000_003 + step)
        terms = adaptation_losses(params, trainer.model, weights, clips, labels, sampler, parts, step, rank, world,
                                  device)
        loss = sum(terms.values())
        ray_train.optimiser_step(loss, trainer.model, trainer.model.trainable(), trainer.opt, cfg.grad_clip, world)
        trainer.seconds += time.perf_counter() - start
        if step + 1 in snapshot_at:
            trainer.snapshots.append({"step": step + 1, "seconds": round(trainer.seconds, 2),
                                      "adaptation": adaptation_state(trainer.model)})
        return {**{k: float(v.detach()) for k, v in terms.items()}, "total": float(loss.detach())}

    ray_train.run_steps(trainer, cfg.steps, step_fn, log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
                        digest=digest, rank=rank, desc=f"train_adaptation@{name}",
                        extra_state={"variant": name, "finished": finished})


def run_digest(params: Params, name: str, variant: AdaptationVariant, clips: list[A2ETClip],
               inputs: dict[str, str]) -> str:
    cfg = params.adaptation_train.model_dump(exclude={"checkpoint_every", "log_every", "curve_clips"})
    return settings_digest({"seed": params.seed, "variant": variant.model_dump(), "train": cfg,
                            "a2et": params.a2et.model_dump(), "adaptation": params.adaptation.model_dump(),
                            "latent": params.latent.model_dump(), "signal": params.signal.model_dump(),
                            "inputs": {k: file_sha256(v) for k, v in inputs.items()}},
                           (part for clip in clips for part in (clip.uid, clip.source.keypoints)))


def variant_mask(params: Params, name: str, table: pd.DataFrame) -> np.ndarray:
    """The MEAD training clips variant ``name`` adapts on (Fig. 5's data fractions)."""
    return fraction_mask(table, params.adaptation_variants[name].data_fraction, params.seed)


@dataclass
class AdaptationData:
    """What every variant shares, loaded once per stage: the basis, MEAD training clips (with neutral sources
    and labels), the held-out clips of the Fig. 5 curve and the classifier that scores them."""

    basis: ExpressionBasis
    table: pd.DataFrame
    clips: list[A2ETClip]
    curve_clips: list[A2ETClip]
    classifier: Any
    sourced: list[A2ETClip] = field(init=False)
    """Every clip with a neutral source (:func:`~eat.adapt.data.adaptation_clips`), labels beside; a variant's
    share is at the positions :func:`~eat.adapt.data.adaptation_subset` gives for its :func:`variant_mask`."""
    labels: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.sourced, self.labels, _ = adaptation_clips(self.table, self.clips)


def load_adaptation_data(params: Params, *, latent_table: Path | str, audio_table: Path | str,
                         latent_model: Path | str, pca_dir: Path | str, emotion_classifier: Path | str
                         ) -> AdaptationData:
    basis = ExpressionBasis.load(pca_dir, params.latent.pca_components)
    table = a2et_table(latent_table, audio_table)
    table = table[(table.dataset == "MEAD") & (table.split == "train")].reset_index(drop=True)
    if table.empty:
        raise ValueError(f"{latent_table}: no MEAD clip of the train split to adapt on")
    cfg = params.adaptation_train
    return AdaptationData(basis, table, load_clips(params, table, basis, str(latent_model), with_frames=True),
                          heldout_clips(params, latent_table, audio_table, basis, latent_model, cfg.curve_clips),
                          load_emotion_classifier(emotion_classifier))


def fit_variants(params: Params, names: list[str], data: AdaptationData, storage: Path, inputs: dict[str, str]
                 ) -> dict[str, dict[str, Any]]:
    """Run (or resume) every variant of ``names`` in one Ray Train run (checkpoints under ``storage/variants``);
    each variant's final state (:meth:`Trainer.final_state`, with ``log`` and ``snapshots``)."""
    import ray  # local: Ray only where a run starts: importing it is slow

    cfg = params.adaptation_train
    subsets = {name: adaptation_subset(data.table, variant_mask(params, name, data.table)) for name in names}
    digest = settings_digest({name: run_digest(params, name, params.adaptation_variants[name],
                                               [data.sourced[i] for i in subsets[name]], inputs) for name in names})
    with ray_train_session(params, cfg.num_workers * cfg.threads_per_worker):
        state = ray_train.fit(
            train_worker,
            {"params": params.model_dump(), "names": names, "subsets": subsets,
             "clips": ray.put((data.sourced, data.labels)), "basis": ray.put(data.basis),
             **{k: str(Path(v).resolve()) for k, v in inputs.items()}},
            storage=storage, name=RUN_NAME, digest=digest, steps=len(names) * cfg.steps,
            num_workers=cfg.num_workers, threads_per_worker=cfg.threads_per_worker, ray=params.ray)
    finished = dict(state["finished"])
    if "variant" in state:      # the last report is the last variant's own
        finished[state["variant"]] = {**state, "step": state["variant_step"]}
    return finished


def save_variant(params: Params, name: str, state: dict[str, Any], data: AdaptationData, inputs: dict[str, str],
                 out_dir: Path, reports_dir: Path) -> dict[str, Any]:
    """Save one trained variant: ``model.pt``, ``snapshots.pt``, its log, metrics and Fig. 5 curve.

    Fig. 5 variants score their snapshots on ``curve_clips`` held-out clips (``curve.csv``: step, seconds,
    acc_emo). Every variant's held-out scores are the ``evaluate`` stage's (Tables 1, 3, 4): a second, smaller
    generation here cost 10 s per variant and added nothing.
    """
    variant = params.adaptation_variants[name]
    start = time.perf_counter()
    mask = variant_mask(params, name, data.table)
    clips, left_out = [data.sourced[i] for i in adaptation_subset(data.table, mask)], without_source(data.table, mask)
    save_model(state, name, variant, params, inputs, out_dir / "model.pt")
    write_csv_atomic(state["log"], reports_dir / "train_log.csv")
    save_torch_atomic(state["snapshots"], out_dir / "snapshots.pt")     # empty for variants without a Fig. 5 curve

    model = load_emotional_model(out_dir / "model.pt", params, data.basis)
    shares = parameter_shares(model.modules_by_key())
    curve = pd.DataFrame(columns=["step", "seconds", "acc_emo"])
    if variant.curve:
        curve = tuning_curve(out_dir / "model.pt", state["snapshots"], data.curve_clips, data.classifier, params,
                             data.basis)
    write_csv_atomic(curve, reports_dir / "curve.csv")
    metrics = {"variant": name, **variant.model_dump(), "steps": state["step"], "train_clips": len(clips),
               "train_clips_by_emotion": {e: int((np.array([c.emotion for c in clips]) == e).sum())
                                          for e in sorted({c.emotion for c in clips})},
               "left_out_without_neutral_source": left_out,
               "loss_first": state["log"][0]["total"], "loss_last": state["log"][-1]["total"],
               "trainable_parameters": sum(t.numel() for t in state["adaptation"].values()),
               "parameter_shares_percent": {p: round(shares.percent(p), 3) for p in ("mapper", "edn", "eam")}}
    write_text_atomic(reports_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    timing = {"seconds_in_steps": round(state["seconds"], 1),
              "evaluation_seconds": round(time.perf_counter() - start, 1),
              "seconds_per_step": round(float(np.mean([r["seconds_per_step"] for r in state["log"]])), 4),
              "peak_rss_mib_worker": state.get("peak_rss_mib"), "peak_rss_mib_driver": ray_train.peak_rss_mib()}
    write_text_atomic(reports_dir / "timing.json", json.dumps(timing, indent=2) + "\n")
    return {**metrics, "timing": timing}


def train_adaptations(params: Params, names: list[str], *, latent_table: Path | str, audio_table: Path | str,
                      latent_model: Path | str, pca_dir: Path | str, a2et_model: Path | str, sync_expert: Path | str,
                      emotion_classifier: Path | str, out_dir: Path | str, checkpoints: Path | str,
                      reports_dir: Path | str) -> dict[str, dict[str, Any]]:
    """Stage ``train_adaptation``: every variant in ``names`` in turn, sharing one data load and one Ray Train run.

    ``<reports_dir>.json``: the variants' headline numbers side by side (``dvc metrics show``).
    Per variant: ``<out_dir>/<name>/{model.pt, snapshots.pt}``, ``<reports_dir>/<name>/{metrics.json, timing.json,
    train_log.csv, curve.csv}``; the one Ray Train run's checkpoints in ``<checkpoints>/variants`` (a killed stage
    resumes in the variant it was in, the finished ones kept).
    """
    unknown = [n for n in names if n not in params.adaptation_variants]
    if unknown:
        raise ValueError(f"unknown adaptation variants {unknown}: params.yaml adaptation_variants has "
                         f"{', '.join(params.adaptation_variants)}")
    inputs = {"latent_model": str(latent_model), "a2et_model": str(a2et_model), "sync_expert": str(sync_expert)}
    for what, file in {**inputs, "emotion_classifier": str(emotion_classifier)}.items():
        if not Path(file).is_file():
            raise FileNotFoundError(f"{file}: {what.replace('_', ' ')} not found (run the stage that writes it)")
    data = load_adaptation_data(params, latent_table=latent_table, audio_table=audio_table,
                                latent_model=latent_model, pca_dir=pca_dir, emotion_classifier=emotion_classifier)
    states = fit_variants(params, names, data, Path(checkpoints), inputs)
    results = {name: save_variant(params, name, states[name], data, inputs, Path(out_dir) / name,
                                  Path(reports_dir) / name) for name in names}
    summary = {name: {"steps": r["steps"], "loss_last": r["loss_last"], "trainable_parameters":
                      r["trainable_parameters"]}
               for name, r in results.items()}
    write_text_atomic(Path(f"{reports_dir}.json"), json.dumps(summary, indent=2) + "\n")   # for dvc metrics
    return results
