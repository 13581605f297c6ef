"""Can the head pose of the 64² aligned frames be learnt, and by what? (run from the repository root)

Data: 300 random training MEAD clips (seed 0) with the synthetic data's exact (yaw, pitch, roll); scored on 512
frames of the held-out identities M003 and W009: correlation with the truth and mean absolute error (the
median-of-training guess is the baseline). Three learners:

- ``ridge``: ridge regression on the 32² grey pixels (8,000 training frames, closed form): is the pose in the
  pixels at all?
- ``plain``: a plain CNN (four stride-2 3×3 convs, 16-128 channels, BatchNorm, ReLU) with a linear head on the
  flattened 4×4 map (``--pool``: on its global average instead), MSE, Adam;
- ``estimator``: the latent model's head-pose/expression estimator (``eat.models.head_pose``, the default
  profile's widths unless ``--he key=value``), trained alone: ``--loss l1`` is the stage's head-pose term on the
  binned logits, ``l1ce`` that plus HopeNet's cross-entropy on the bins, ``mse`` the squared error of the same
  expectation, ``direct`` / ``direct_l1`` a linear head on the pooled trunk with an MSE / L1 loss
  (``--cut stage1|stage2|stage3`` pools an earlier stage); ``--bin-prior`` shapes the initial bin logits.
  ``--roll R`` turns every training and scoring image by a random angle in ±R degrees
  (``eat.latent.data.rotate_frame``) and adds it to the roll label.

Usage: python docs/probes/latent/nineteenth/pose_probe.py estimator --steps 500 --loss direct
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from sklearn.linear_model import RidgeCV
from torch import nn

from eat.config import load_params
from eat.latent.data import FrameBank, groundtruth_head_pose, load_bank, rotate_frame, to_tensor
from eat.latent.losses import headpose_loss
from eat.latent.train import training_tables
from eat.models.head_pose import HeadPoseExpressionEstimator
from eat.models.keypoints import POSE_RANGE_SPAN, POSE_RANGE_START, degrees_to_bins

GROUNDTRUTH = "data/synth/groundtruth/frames.parquet"


def banks() -> tuple[FrameBank, FrameBank]:
    p = load_params("params.yaml")
    train, held = training_tables("data/features/pose.parquet")
    train = train[train.dataset == "MEAD"].sample(300, random_state=0)
    return tuple(groundtruth_head_pose(load_bank(t, p.signal.image_size, p.crop_align.size), GROUNDTRUTH)
                 for t in (train, held))


def rolled(frames: np.ndarray, pose: np.ndarray, roll: float, rng: np.random.Generator
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, 3, S, S) and (yaw, pitch, roll) labels (B, 3), each image turned by a random angle in ±roll."""
    x, y = to_tensor(frames), torch.from_numpy(pose[:, :3].copy())
    if roll > 0:
        angles = rng.uniform(-roll, roll, len(x))
        none = np.zeros((68, 2), np.float32)
        x = torch.stack([rotate_frame(img, none, float(a))[0] for img, a in zip(x, angles, strict=True)])
        y[:, 2] += torch.from_numpy(angles).float()
    return x, y


def report(name: str, step: int, pred: np.ndarray, y: np.ndarray, seconds: float) -> None:
    corr = [round(float(np.corrcoef(pred[:, k], y[:, k])[0, 1]), 3) for k in range(3)]
    mae = [round(float(v), 2) for v in np.abs(pred - y).mean(0)]
    print(f"{name} step {step}: corr (yaw, pitch, roll) {corr}, MAE {mae}, {seconds:.0f} s", flush=True)


class Plain(nn.Module):
    def __init__(self, pool: bool):
        super().__init__()
        layers, c = [], 3
        for w in (16, 32, 64, 128):
            layers += [nn.Conv2d(c, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU()]
            c = w
        self.trunk = nn.Sequential(*layers)
        self.pool = pool
        self.head = nn.Linear(128 if pool else 128 * 16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x)
        return self.head(h.mean(dim=(2, 3)) if self.pool else h.flatten(1))


class Estimator(nn.Module):
    """The estimator, read as degrees: its binned heads (``loss`` l1 / mse) or a linear head on a pooled stage."""

    def __init__(self, he: HeadPoseExpressionEstimator, loss: str, cut: str):
        super().__init__()
        self.he, self.loss, self.cut = he, loss, cut
        if loss.startswith("direct"):
            self.head = nn.Linear(self.pooled(torch.zeros(2, 3, 64, 64)).shape[1], 3)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        he = self.he
        out = F.max_pool2d(F.relu(he.norm1(he.conv1(x))), kernel_size=3, stride=2, padding=1)
        stages = [("stage1", lambda o: he.block1(F.relu(he.norm2(he.conv2(o))))),
                  ("stage2", lambda o: he.block3(he.block2(F.relu(he.norm3(he.conv3(o)))))),
                  ("stage3", lambda o: he.block5(he.block4(F.relu(he.norm4(he.conv4(o)))))),
                  ("full", lambda o: he.block7(he.block6(F.relu(he.norm5(he.conv5(o))))))]
        for name, stage in stages:
            out = stage(out)
            if name == self.cut:
                break
        return out.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.loss.startswith("direct"):
            return self.head(self.pooled(x))
        return torch.stack(self.he(x).degrees(), -1)

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.loss in ("l1", "l1ce"):
            h = self.he(x)
            loss = headpose_loss(h.yaw, h.pitch, h.roll, y)
            if self.loss == "l1ce":     # HopeNet's own objective adds a cross-entropy on the bins
                logits = (h.yaw, h.pitch, h.roll)
                loss = loss + sum(F.cross_entropy(z, degrees_to_bins(y[:, k], z.shape[-1]))
                                  for k, z in enumerate(logits))
            return loss
        if self.loss == "direct_l1":
            return (self(x) - y).abs().mean(0).sum()
        return ((self(x) - y) ** 2).mean(0).sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("learner", choices=("ridge", "plain", "estimator"))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pool", action="store_true", help="plain: a linear head on the global average")
    parser.add_argument("--loss", choices=("l1", "l1ce", "mse", "direct", "direct_l1"), default="l1")
    parser.add_argument("--cut", choices=("stage1", "stage2", "stage3", "full"), default="full")
    parser.add_argument("--he", action="append", default=[], metavar="KEY=VALUE",
                        help="estimator size override (a YAML value)")
    parser.add_argument("--roll", type=float, default=0.0)
    parser.add_argument("--bin-prior", type=float, default=0.0, help="estimator: initial bin logits, a Gaussian "
                        "of this many degrees about 0 (0: PyTorch's default initialisation)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    train, held = banks()
    scored = np.random.default_rng(1).choice(len(held.frames), 512, replace=False)
    x_held, y_held = rolled(held.frames[scored], held.pose[scored], args.roll, np.random.default_rng(5))
    guess = np.median(train.pose[:, :3], 0)
    print("median guess MAE", [round(float(v), 2) for v in np.abs(guess - y_held.numpy()).mean(0)])
    if args.learner == "ridge":
        picked = np.random.default_rng(0).choice(len(train.frames), 8000, replace=False)
        x, y = rolled(train.frames[picked], train.pose[picked], args.roll, np.random.default_rng(0))
        grey = [F.avg_pool2d(t.mean(1, keepdim=True), 2).flatten(1).numpy() for t in (x, x_held)]
        model = RidgeCV(alphas=[0.1, 1, 10, 100]).fit(grey[0], y.numpy())
        report("ridge", 0, model.predict(grey[1]), y_held.numpy(), 0)
        return
    if args.learner == "plain":
        net: nn.Module = Plain(args.pool)
        objective = lambda x, y: ((net(x) - y) ** 2).mean(0).sum()    # noqa: E731
    else:
        he_cfg = load_params("params.yaml").latent
        he_cfg = he_cfg.model_copy(update={k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.he)})
        net = Estimator(HeadPoseExpressionEstimator(he_cfg), args.loss, args.cut)
        if args.bin_prior > 0:          # start each binned head as a Gaussian of this width (degrees) about 0
            for fc in (net.he.fc_yaw, net.he.fc_pitch, net.he.fc_roll):
                centres = POSE_RANGE_START + POSE_RANGE_SPAN / fc.out_features * torch.arange(fc.out_features)
                with torch.no_grad():
                    fc.bias.copy_(-0.5 * (centres / args.bin_prior) ** 2)
        objective = net.objective
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    rng, start = np.random.default_rng(0), time.time()
    for step in range(1, args.steps + 1):
        picked = rng.integers(0, len(train.frames), args.batch)
        loss = objective(*rolled(train.frames[picked], train.pose[picked], args.roll, rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(1, args.steps // 5) == 0 or step == args.steps:
            net.eval()
            with torch.no_grad():
                pred = net(x_held).numpy()
            net.train()
            report(args.learner, step, pred, y_held.numpy(), time.time() - start)


if __name__ == "__main__":
    main()
