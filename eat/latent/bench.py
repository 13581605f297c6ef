"""``make bench latent``: speed of the latent model on this machine (training step, rendering, keypoints).

Measured at the default profile (what ``make repro`` trains) and at the paper profile (the
official widths at 256², whose generator forward the official code runs at 8.1 s per frame on a
2-core CPU). Random inputs: the networks' cost does not depend on them. Each training step's FLOPs are
split by box (keypoint detector, head-pose estimator, RePos-Net and its parts, discriminator, VGG19), so
the next change to the recipe is measured the same way.
"""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from eat.config import Params, deep_merge, parse_params, read_yaml
from eat.latent.data import Batch
from eat.latent.objective import Objective
from eat.latent.train import Trainer
from eat.latent.vgg import load_vgg19
from eat.machine import cpu_kind
from eat.models.latent import LatentNetworks
from eat.models.pyramid import ImagePyramid
from eat.paths import PAPER_PROFILE


def _seconds(fn, repeat: int) -> float:
    fn()  # warm-up: allocator, oneDNN kernel selection
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


@torch.no_grad()
def _render_seconds(nets: LatentNetworks, size: int, batch: int, repeat: int) -> dict[str, float]:
    source, driving = torch.rand(1, 3, size, size), torch.rand(batch, 3, size, size)
    canonical = nets.kp_detector(source)
    kp = canonical.expand(batch, -1, -1)
    volume = nets.generator.appearance(source).expand(batch, -1, -1, -1, -1)
    render = _seconds(lambda: nets.generator.render(volume, kp, kp), repeat) / batch
    keypoints = _seconds(lambda: nets.he_estimator(driving), repeat) / batch
    return {"render_s_per_frame": round(render, 4), "head_pose_s_per_frame": round(keypoints, 5),
            "kp_detector_s_per_frame": round(_seconds(lambda: nets.kp_detector(source), repeat), 5)}


# the boxes whose share of a training step the bench reports (module paths under FlopCounterMode)
FLOP_PARTS = {"keypoint detector": "KeypointDetector", "head-pose estimator": "HeadPoseExpressionEstimator",
              "RePos-Net": "RePosNet", "RePos-Net: dense motion": "RePosNet.dense_motion_network",
              "RePos-Net: SPADE decoder": "RePosNet.decoder", "discriminator": "MultiScaleDiscriminator",
              "VGG19 (perceptual loss)": "VGG19Features"}


def _train_step(params: Params, forward_only: bool = False):
    """One training step of the enhanced variant on random frames, as a closure (the stage's own objective);
    ``forward_only``: the loss terms alone, without gradients."""
    cfg, size = params.latent_train, params.signal.image_size
    trainer = Trainer(params.latent, cfg, params.optim, params.seed, torch.device("cpu"))
    vgg, _ = load_vgg19("substitute", params.seed)
    objective = Objective(cfg, "enhanced", vgg, ImagePyramid(cfg.pyramid_scales))
    n = cfg.batch_size
    landmarks = (torch.rand(n, 68, 2) * size * 0.5 + size * 0.25).numpy()
    batch = Batch(torch.rand(n, 3, size, size), torch.rand(n, 3, size, size), landmarks, torch.zeros(n, 3))

    def forward() -> None:
        with torch.no_grad():
            _, prediction, _ = objective.generator_losses(trainer.nets, batch, step_seed=0)
            if cfg.gan_weight > 0:
                objective.discriminator_loss(trainer.nets, batch, prediction)

    def step() -> None:
        terms, prediction, _ = objective.generator_losses(trainer.nets, batch, step_seed=0)
        trainer.opt_g.zero_grad()
        sum(terms.values()).backward()
        trainer.opt_g.step()
        if cfg.gan_weight > 0:
            d_loss = objective.discriminator_loss(trainer.nets, batch, prediction)
            trainer.opt_d.zero_grad()
            d_loss.backward()
            trainer.opt_d.step()

    return forward if forward_only else step


def flop_split(params: Params) -> dict:
    """GFLOP of one training step (forward + backward, counted by torch's FlopCounterMode) and each box's share
    of the forward pass (backward ops are not reliably attributed to modules; they cost about twice the forward)."""
    with FlopCounterMode(display=False) as counter:
        _train_step(params)()
    total = sum(counter.get_flop_counts().get("Global", {}).values())
    with FlopCounterMode(display=False) as counter:
        _train_step(params, forward_only=True)()
    counts = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    forward = counts.get("Global", 0)
    return {"gflop_per_step": round(total / 1e9, 2), "forward_gflop": round(forward / 1e9, 2),
            "forward_share": {part: round(counts.get(path, 0) / forward, 3) if forward else 0.0
                              for part, path in FLOP_PARTS.items()}}


def bench_latent(params_path: str) -> dict:
    params = parse_params(read_yaml(params_path), params_path)
    threads = params.latent_train.threads_per_worker
    torch.set_num_threads(threads)
    result: dict = {"threads": threads, "default_profile": {
        "image_size": params.signal.image_size, "batch_size": params.latent_train.batch_size,
        "train_step_s": round(_seconds(_train_step(params), repeat=5), 3),
        "flops": flop_split(params), "cpu_flags": cpu_kind(),
        **_render_seconds(LatentNetworks.from_config(params.latent).eval(), params.signal.image_size, 8, 5)}}
    paper = parse_params(deep_merge(read_yaml(params_path), read_yaml(PAPER_PROFILE)), "paper profile")
    result["paper_profile"] = {"image_size": paper.signal.image_size,
                               **_render_seconds(LatentNetworks.from_config(paper.latent).eval(),
                                                 paper.signal.image_size, 1, 1),
                               "official_generator_s_per_frame_on_this_cpu": 8.1}
    return result
