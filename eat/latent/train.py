"""Training of the latent model on Ray Train (stage ``train_latent``, one run per variant).

The driver (:func:`train_latent`) loads the training frames once, puts them in Ray's object
store and starts a ``TorchTrainer`` with ``latent_train.num_workers`` data-parallel workers
(a GPU each where the cluster has GPUs, else CPUs). Each worker (:func:`train_worker`) takes
its slice of every global batch, averages gradients over workers, and every
``checkpoint_every`` steps reports a Ray Train checkpoint (weights, optimisers, schedules,
step, log) into ``<out_dir>/ray/<variant>`` inside the project.

Resume after a kill: the driver finds the newest checkpoint written for the same digest
(seed, variant, configs, worker count and the exact training frames) and hands its path to
the workers, which continue from it. Batches, warps and initialisation are functions of
(seed, step) only, so the resumed run ends with the same weights as an uninterrupted one
(tested). Checkpoints for another digest are deleted.

Outputs: ``model.pt`` (kp detector, head-pose/expression estimator and RePos-Net weights, for
inference), the per-step log as CSV (``dvc plots``), the metrics JSON and held-out figures
(:mod:`eat.latent.evaluate`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from eat import ray_train
from eat.config import LatentConfig, LatentTrainConfig, OptimConfig, Params, read_yaml
from eat.io.atomic import write_text_atomic
from eat.io.hashing import file_sha256, settings_digest
from eat.io.reproducible import reproducible_torch
from eat.io.tables import write_csv_atomic
from eat.io.torch_files import save_torch_atomic
from eat.latent.data import Augmentation, FrameBank, PairSampler, groundtruth_head_pose, load_bank, make_batch
from eat.latent.evaluate import evaluate, save_side_by_side
from eat.latent.objective import Objective
from eat.latent.vgg import load_vgg19
from eat.models.latent import LatentNetworks
from eat.models.pyramid import ImagePyramid
from eat.paths import PAPER_PROFILE
from eat.ray_runtime import ray_session
from eat.ray_train import peak_rss_mib

log = logging.getLogger(__name__)

MODES = ("osfv", "enhanced")
INFERENCE_PARTS = ("kp_detector", "he_estimator", "generator")


def run_digest(params: Params, mode: str, bank: FrameBank, init: Path | None) -> str:
    """What a checkpoint depends on: seed, variant, configs, the initial weights and the exact frames."""
    cfg = params.latent_train.model_dump(exclude={"checkpoint_every", "log_every", "eval_frames_per_clip",
                                                  "eval_batch_size"})
    return settings_digest({"seed": params.seed, "mode": mode, "latent": params.latent.model_dump(), "train": cfg,
                            "optim": params.optim.model_dump(), "init": file_sha256(init) if init else "scratch"},
                           (bank.frames, bank.pose, bank.landmarks))


@dataclass(frozen=True)
class LrFactor:
    """Learning-rate multiplier at a step: linear warm-up over ``warmup`` steps, then either OSFV's
    step decay (× 0.1 at each milestone fraction of ``steps``) or a cosine decay to 0 at ``steps``."""

    steps: int
    schedule: str
    milestones: list[float]
    warmup: int

    def __call__(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup) if self.warmup else 1.0
        if self.schedule == "cosine":
            return warm * 0.5 * (1 + math.cos(math.pi * min(step, self.steps) / self.steps))
        return warm * 0.1 ** sum(step >= int(f * self.steps) for f in self.milestones)


class Trainer(ray_train.CheckpointedTrainer):
    """Networks, optimisers and schedules of one worker, with save/restore of the whole state."""

    saved_parts = ("nets", "opt_g", "opt_d", "sched_g", "sched_d")

    def __init__(self, latent: LatentConfig, train: LatentTrainConfig, optim: OptimConfig, seed: int,
                 device: torch.device):
        torch.manual_seed(seed)
        self.nets = LatentNetworks.from_config(latent).to(device)
        g_params = [p for name in INFERENCE_PARTS for p in getattr(self.nets, name).parameters()]
        betas = tuple(optim.betas)
        lr = optim.lr * train.lr_scale
        self.opt_g = torch.optim.Adam(g_params, lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.nets.discriminator.parameters(), lr=lr, betas=betas)
        factor = LrFactor(train.steps, train.lr_schedule, train.lr_milestones, train.warmup_steps)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, factor)
        self.step = 0
        self.log: list[dict[str, float]] = []


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train loop of one worker; ``config`` is built by :func:`fit`."""
    import ray  # local: Ray is heavy and only the training workers need it
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    latent, train, optim = (LatentConfig(**config["latent"]), LatentTrainConfig(**config["train"]),
                            OptimConfig(**config["optim"]))
    seed, mode = config["seed"], config["mode"]
    with reproducible_torch(train.threads_per_worker, deterministic="warn"):
        device = ray.train.torch.get_device()
        bank: FrameBank = ray.get(config["bank"])

        trainer = Trainer(latent, train, optim, seed, device)
        vgg, vgg_info = load_vgg19(train.vgg_weights, seed)
        objective = Objective(train, mode, vgg.to(device), ImagePyramid(train.pyramid_scales).to(device))
        state = ray_train.resume_state(config)
        if state is not None:
            trainer.load_state_dict(state)
        elif config["init"]:
            load_inference_parts(trainer.nets, config["init"])

        sampler = PairSampler(bank, mode, seed)
        augment = Augmentation.from_config(train)
        trainer.nets.train()

        def step_fn(step: int) -> dict[str, float]:
            source, driving = sampler.pairs(step, train.batch_size)
            mine = np.arange(train.batch_size)[rank::world]
            batch = augment(make_batch(bank, source[mine], driving[mine], device),
                            [np.random.default_rng([seed, step, int(i)]) for i in mine])
            torch.manual_seed(seed * 1_000_003 + step)
            terms, prediction, _ = objective.generator_losses(trainer.nets, batch, step_seed=seed + step)
            loss = sum(terms.values())
            trainer.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            for name in INFERENCE_PARTS:
                ray_train.average_gradients(getattr(trainer.nets, name), world)
            trainer.opt_g.step()
            if train.gan_weight > 0:
                d_loss = objective.discriminator_loss(trainer.nets, batch, prediction)
                trainer.opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                ray_train.average_gradients(trainer.nets.discriminator, world)
                trainer.opt_d.step()
                terms["discriminator"] = d_loss
            trainer.sched_g.step()
            trainer.sched_d.step()
            return {**{k: float(v.detach()) for k, v in terms.items()}, "total": float(loss.detach())}

        ray_train.run_steps(trainer, train.steps, step_fn, log_every=train.log_every,
                            checkpoint_every=train.checkpoint_every, digest=config["digest"], rank=rank,
                            desc=f"train_latent@{mode}", extra_state={"vgg": vgg_info})


def fit(params: Params, mode: str, bank: FrameBank, storage: Path, init: Path | None = None) -> dict[str, Any]:
    """Run (or resume) Ray Train for one variant, from ``init``'s weights if given; returns rank 0's final state."""
    import ray  # local: see train_worker

    cfg = params.latent_train
    with ray_session(params.ray.address, num_cpus=max(params.ray.workers, cfg.num_workers * cfg.threads_per_worker)):
        return ray_train.fit(
            train_worker,
            {"latent": params.latent.model_dump(), "train": cfg.model_dump(), "optim": params.optim.model_dump(),
             "seed": params.seed, "mode": mode, "bank": ray.put(bank),
             "init": str(Path(init).resolve()) if init else None},
            storage=storage, name=mode, digest=run_digest(params, mode, bank, init), steps=cfg.steps,
            num_workers=cfg.num_workers, threads_per_worker=cfg.threads_per_worker, ray=params.ray)


def save_inference_model(state: dict[str, Any], latent: LatentConfig, mode: str, path: Path) -> None:
    """``model.pt``: the three inference networks' weights and their config (eat/schema.py)."""
    nets = state["nets"]
    parts = {name: {k[len(name) + 1:]: v for k, v in nets.items() if k.startswith(f"{name}.")}
             for name in INFERENCE_PARTS}
    save_torch_atomic({"config": latent.model_dump(), "mode": mode, "steps": state["step"], "vgg": state["vgg"],
                       **parts}, path)


def load_inference_parts(nets: LatentNetworks, path: Path | str) -> None:
    """Load the kp detector, head-pose estimator and generator of a ``model.pt`` into ``nets``."""
    saved = torch.load(path, map_location=next(nets.parameters()).device, weights_only=True)
    for name in INFERENCE_PARTS:
        getattr(nets, name).load_state_dict(saved[name])


def load_inference_model(path: Path | str, device: str | torch.device = "cpu") -> LatentNetworks:
    """The trained networks of ``model.pt`` in eval mode (the discriminator stays untrained: not needed)."""
    saved = torch.load(path, map_location=device, weights_only=True)
    nets = LatentNetworks.from_config(LatentConfig(**saved["config"])).to(device)
    load_inference_parts(nets, path)
    return nets.eval()


def training_tables(pose_table: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training clips, held-out clips) of data/features/pose.parquet: the train split vs MEAD test identities."""
    table = pd.read_parquet(pose_table)
    train = table[table.split == "train"].sort_values("uid").reset_index(drop=True)
    held = table[(table.split == "test") & (table.dataset == "MEAD")].sort_values("uid").reset_index(drop=True)
    if train.empty:
        raise ValueError(f"{pose_table}: no clip of the train split; check the preprocessing quarantine")
    return train, held


HEADPOSE_LABELS = {"estimated": "the pose stage's PnP estimates (OSFV: a pretrained HopeNet)",
                   "groundtruth": "substitute: the synthetic data's exact head pose, training split only "
                                  "(OSFV: a pretrained HopeNet)"}


def recipe_deviations(cfg: LatentTrainConfig, paper_profile: Path | str | None) -> dict[str, dict]:
    """The ``latent_train`` loss, optimiser and augmentation keys whose value differs from ``configs/paper.yaml``
    (OSFV's / the official recipe): ``{key: {"here": value, "paper": value}}``, for metrics and reports."""
    if paper_profile is None or not Path(paper_profile).is_file():
        return {}
    paper = (read_yaml(Path(paper_profile)).get("latent_train") or {})
    here = cfg.model_dump()
    skip = {"steps", "batch_size", "num_workers", "threads_per_worker", "checkpoint_every", "log_every", "bf16",
            "eval_frames_per_clip", "eval_batch_size", "vgg_weights"}
    return {k: {"here": here[k], "paper": v} for k, v in sorted(paper.items())
            if k in here and k not in skip and here[k] != v}


def train_latent(params: Params, mode: str, pose_table: Path | str, out_dir: Path | str,
                 reports_dir: Path | str, init: Path | str | None = None,
                 paper_profile: Path | str | None = PAPER_PROFILE) -> dict[str, Any]:
    """Stage ``train_latent@<mode>``: train or resume, save ``model.pt``, log, held-out metrics and figures.

    ``init``: a ``model.pt`` to start from (the enhanced variant refines the trained osfv one, as the
    paper's enhanced latent refines OSFV); None trains from scratch.

    ``metrics.json`` holds only deterministic numbers (DVC compares them across runs); wall
    time and peak memory go to ``timing.json`` beside it.
    """
    if mode not in MODES:
        raise ValueError(f"unknown latent variant {mode!r}: expected one of {', '.join(MODES)}")
    start = time.perf_counter()
    out_dir, reports_dir = Path(out_dir), Path(reports_dir)
    cfg, size, aligned = params.latent_train, params.signal.image_size, params.crop_align.size
    train_clips, held_clips = training_tables(pose_table)
    bank = load_bank(train_clips, size, aligned)
    if cfg.headpose_labels == "groundtruth":
        bank = groundtruth_head_pose(bank, Path(params.data.transcripts).with_name("frames.parquet"))
    loaded = time.perf_counter()
    init = Path(init) if init else None
    if init is not None and not init.is_file():
        raise FileNotFoundError(f"{init}: initial latent model not found (train the variant it comes from first)")
    state = fit(params, mode, bank, out_dir / "ray", init)
    trained = time.perf_counter()
    save_inference_model(state, params.latent, mode, out_dir / "model.pt")
    write_csv_atomic(state["log"], reports_dir / "train_log.csv")

    metrics: dict[str, Any] = {"variant": mode, "initialised_from": str(init) if init else "scratch",
                               "image_size": size, "train_clips": len(train_clips),
                               "train_frames": len(bank.frames), "steps": state["step"],
                               "loss_first": state["log"][0]["total"], "loss_last": state["log"][-1]["total"],
                               "vgg19": state["vgg"], "headpose_labels": HEADPOSE_LABELS[cfg.headpose_labels],
                               "deviations_from_paper_profile": recipe_deviations(cfg, paper_profile),
                               "heldout": {"clips": 0}}
    if not held_clips.empty:
        nets = load_inference_model(out_dir / "model.pt")
        held = load_bank(held_clips, size, aligned)
        metrics["heldout"], examples = evaluate(nets, held, cfg.eval_frames_per_clip, cfg.face_margin,
                                                face_detector=params.crop_align.backend)
        for identity, example in examples.items():
            save_side_by_side(example, reports_dir / "heldout" / f"{identity}.png",
                              f"latent model ({mode}), held-out identity {identity}")
    write_text_atomic(reports_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    timing = {"load_seconds": round(loaded - start, 1), "train_seconds": round(trained - loaded, 1),
              "total_seconds": round(time.perf_counter() - start, 1),
              "seconds_per_step": round(float(np.mean([r["seconds_per_step"] for r in state["log"]])), 4),
              "peak_rss_mib_worker": state.get("peak_rss_mib"), "peak_rss_mib_driver": peak_rss_mib(),
              "num_workers": cfg.num_workers, "threads_per_worker": cfg.threads_per_worker}
    write_text_atomic(reports_dir / "timing.json", json.dumps(timing, indent=2) + "\n")
    return {**metrics, "timing": timing}
