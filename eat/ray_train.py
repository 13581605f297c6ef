"""What every Ray Train stage shares: resumable checkpoints keyed by a run digest, gradient averaging, the trainer.

A training stage (latent model, A2ET, adaptation, lip-sync expert, Emotion-FAN) writes a worker loop that
builds its state from a ``train_loop_config``, restores it from :func:`resume_state`, and calls :func:`report`
every ``checkpoint_every`` steps. :func:`fit` finds the newest checkpoint written for the same digest in
``storage/<name>`` (deleting those of another digest), skips training when it already reached the last
step, and otherwise starts a ``TorchTrainer`` (:func:`lean_torch_trainer`) with ``num_workers`` data-parallel
workers (a GPU each where the cluster has GPUs) that continue from it. Every batch being a function of (seed,
step), a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import logging
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from eat.config import RayConfig
from eat.ray_runtime import LOCAL, gpu_available, ray_session, resolve_address

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"
CLUSTER_MAX_FAILURES = 3   # restarts of a training run on a cluster after a worker or its node dies
RAY_RUN_RECORD = "checkpoint_manager_snapshot.json"   # Ray Train v2's record of a run's checkpoints


def read_state(checkpoint_dir: str | Path) -> dict[str, Any]:
    """The training state saved in a checkpoint folder."""
    return torch.load(Path(checkpoint_dir) / STATE_FILE, map_location="cpu", weights_only=True)


def peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def average_gradients(module: torch.nn.Module, world_size: int) -> None:
    """Data parallelism without DDP's wrapper: sum each gradient over workers and divide."""
    if world_size == 1:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world_size


def optimiser_step(loss: torch.Tensor, module: torch.nn.Module, trainable, opt: torch.optim.Optimizer,
                   grad_clip: float, world_size: int) -> None:
    """One data-parallel update: backward, gradients averaged over workers, norm of ``trainable`` clipped, step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    average_gradients(module, world_size)
    torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
    opt.step()


def latest_checkpoint(storage: Path, digest: str) -> tuple[Path | None, int]:
    """The newest checkpoint under ``storage`` written for ``digest`` (and its step); stale ones are deleted."""
    best, best_step = None, -1
    for folder in sorted(storage.glob("checkpoint_*")):
        if not folder.is_dir():      # RAY_RUN_RECORD shares the prefix
            continue
        try:
            state = read_state(folder)
        except (OSError, RuntimeError, EOFError) as exc:   # a checkpoint cut short by the kill
            log.warning("ignoring unreadable checkpoint %s: %s", folder, exc)
            continue
        if state.get("digest") != digest:
            shutil.rmtree(folder, ignore_errors=True)
        elif state["step"] > best_step:
            best, best_step = folder, int(state["step"])
    return best, max(best_step, 0)


def resume_state(config: dict[str, Any]) -> dict[str, Any] | None:
    """Inside a worker: the state to continue from (Ray's own restored checkpoint, else the driver's pick)."""
    import ray.train  # local: Ray is heavy and only runs inside training

    resume = ray.train.get_checkpoint()
    if resume is not None:
        with resume.as_directory() as folder:
            return read_state(folder)
    if config.get("resume_from"):
        return read_state(config["resume_from"])
    return None


def report(state: dict[str, Any], metrics: dict[str, Any], rank: int) -> None:
    """Report ``metrics`` and (rank 0) ``state`` as a Ray Train checkpoint; the peak memory rides along."""
    import ray.train  # local: see resume_state

    metrics = {**metrics, "peak_rss_mib": peak_rss_mib()}
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            torch.save({**state, "peak_rss_mib": metrics["peak_rss_mib"]}, Path(folder) / STATE_FILE)
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(metrics, checkpoint=checkpoint)


@cache
def lean_torch_trainer() -> type:
    """Ray Train's ``TorchTrainer`` less two helper actors that every run would otherwise start and nothing here uses.

    - The Ray Data dataset manager: no stage passes Ray Datasets (each loads its clips itself).
    - The placement-group cleaner: it polls the controller every second, to free the worker group's CPUs should the
      controller die while its driver lives on. A stage's controller dies only with its driver, whose job's end frees
      them.

    A one-step run on a 2-core AMD EPYC with AVX512-BF16 (``docs/probes/test_suite/``) takes 11.3 s and 13.9
    CPU-seconds instead of 13.4 s and 18.4, with the same weights. It overrides a private method of the pinned Ray
    (constraints.txt); ``tests/test_ray_runtime.py`` checks what it keeps and drops.
    """
    from ray.train.torch import TorchTrainer  # local: see resume_state
    from ray.train.v2._internal.callbacks.datasets import DatasetsCallback
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

    class LeanTorchTrainer(TorchTrainer):
        def _create_default_callbacks(self):
            return [c for c in super()._create_default_callbacks()
                    if not isinstance(c, DatasetsCallback | PlacementGroupCleanerCallback)]

    return LeanTorchTrainer


def fit(worker: Callable[[dict[str, Any]], None], loop_config: dict[str, Any], *, storage: Path, name: str,
        digest: str, steps: int, num_workers: int, threads_per_worker: int, ray: RayConfig,
        max_failures: int | None = None, use_gpu: bool = True) -> dict[str, Any]:
    """Run (or resume) ``worker`` on Ray Train until ``steps``; returns rank 0's final state.

    ``loop_config`` gains ``digest`` and ``resume_from``; the worker must store ``digest`` and ``step`` in
    every state it reports. When a worker fails (its process or node dies, or the loop raises), Ray Train
    restarts the whole worker group from the last reported checkpoint, up to ``max_failures`` times (Ray's
    ``FailureConfig``; 0 = fail at once) before ``fit`` raises. By default that is
    :data:`CLUSTER_MAX_FAILURES` on a cluster, where a node can be lost, and 0 on a local Ray, where a
    restart could only repeat a deterministic failure. ``use_gpu``: give each worker a GPU where the cluster has
    GPUs; False keeps the workers on CPUs everywhere (the supervisors: a GPU would change the weights that their
    recipe's fixed CPU threads and deterministic kernels give).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig  # local: see resume_state

    run_dir = storage / name
    resume_from, resume_step = latest_checkpoint(run_dir, digest)
    if resume_from is not None and resume_step >= steps:
        log.info("%s: training already finished at step %d", resume_from, resume_step)
        return read_state(resume_from)
    if resume_from is not None:
        print(f"{name}: resuming from {resume_from} (step {resume_step} of {steps})")
    # Resume goes through ``resume_from``; Ray Train's own run record may name checkpoints pruned above (another
    # digest), and Ray refuses to start from such a record, so it is dropped.
    (run_dir / RAY_RUN_RECORD).unlink(missing_ok=True)
    if max_failures is None:
        max_failures = 0 if resolve_address(ray.address) == LOCAL else CLUSTER_MAX_FAILURES
    with ray_session(ray.address, num_cpus=max(ray.workers, num_workers * threads_per_worker)):
        trainer = lean_torch_trainer()(
            worker,
            train_loop_config={**loop_config, "digest": digest,
                               "resume_from": str(resume_from) if resume_from else None},
            scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu and gpu_available(),
                                         resources_per_worker={"CPU": threads_per_worker}),
            run_config=RunConfig(storage_path=str(storage.resolve()), name=name,
                                 checkpoint_config=CheckpointConfig(num_to_keep=2),
                                 failure_config=FailureConfig(max_failures=max_failures)),
        )
        result = trainer.fit()
        with result.checkpoint.as_directory() as folder:
            return read_state(folder)


class CheckpointedTrainer:
    """Save and restore of a trainer that :func:`run_steps` drives: ``step``, the lists named in :attr:`saved_lists`
    (``log`` at least) and the ``state_dict`` of each attribute named in :attr:`saved_parts` (networks, optimisers,
    schedules), each under its own name, in that order."""

    saved_lists: tuple[str, ...] = ("log",)
    saved_parts: tuple[str, ...] = ()

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, **{name: getattr(self, name) for name in self.saved_lists},
                **{name: getattr(self, name).state_dict() for name in self.saved_parts}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.saved_parts:
            getattr(self, name).load_state_dict(state[name])
        self.step = int(state["step"])
        for name in self.saved_lists:
            setattr(self, name, list(state[name]))


class StepLog:
    """Per-step loss terms averaged over ``log_every`` steps into rows (step, terms…, seconds_per_step)."""

    def __init__(self, rows: list[dict[str, float]]):
        self.rows = rows
        self._sums: dict[str, float] = {}
        self._n, self._start = 0, time.perf_counter()

    def add(self, terms: dict[str, float]) -> None:
        for name, value in terms.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._n += 1

    def close_row(self, step: int) -> dict[str, float]:
        row = {"step": step, **{k: round(v / self._n, 6) for k, v in sorted(self._sums.items())},
               "seconds_per_step": round((time.perf_counter() - self._start) / self._n, 4)}
        self.rows.append(row)
        self._sums, self._n, self._start = {}, 0, time.perf_counter()
        return row


def run_steps(trainer, steps: int, step_fn: Callable[[int], dict[str, float]], *, log_every: int,
              checkpoint_every: int, digest: str, rank: int, desc: str, extra_state: dict | None = None) -> None:
    """The shared worker loop: ``step_fn(step)`` does one optimiser step and returns its loss terms (floats, with
    ``total``); rows go to ``trainer.log``, progress to a bar on rank 0, and every ``checkpoint_every`` steps (and at
    the end) the state ``{**trainer.state_dict(), digest, **extra_state}`` is reported (:func:`report`).

    ``trainer``: ``.step`` (the next step to run), ``.log`` (list of rows) and ``.state_dict()``.
    """
    log = StepLog(trainer.log)
    bar = tqdm(range(trainer.step, steps), desc=desc, unit="step", file=sys.stdout, initial=trainer.step,
               total=steps, mininterval=10, disable=rank != 0)
    for step in bar:
        log.add(step_fn(step))
        trainer.step = step + 1
        if trainer.step % log_every == 0 or trainer.step == steps:
            bar.set_postfix(loss=log.close_row(trainer.step)["total"], refresh=False)
        if trainer.step % checkpoint_every == 0 or trainer.step == steps:
            report({**trainer.state_dict(), "digest": digest, **(extra_state or {})},
                   trainer.log[-1] if trainer.log else {"step": trainer.step}, rank)


def train_single_worker(trainer, clips: Sequence, cfg, config: dict[str, Any], desc: str) -> None:
    """The one-worker loop of a supervisor (lip-sync expert, Emotion-FAN): resume ``trainer`` (:func:`resume_state`),
    then :func:`run_steps` of ``trainer.train_step(clips, step)`` up to ``cfg.steps``, logging and checkpointing
    every ``cfg.log_every`` / ``cfg.checkpoint_every`` steps."""
    state = resume_state(config)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.model.train()
    run_steps(trainer, cfg.steps, lambda step: trainer.train_step(clips, step), log_every=cfg.log_every,
              checkpoint_every=cfg.checkpoint_every, digest=config["digest"], rank=0, desc=desc)
