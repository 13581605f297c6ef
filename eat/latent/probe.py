"""Learning probes for the renderer: how fast does each path learn to reproduce a held-out face?

``python -m eat.latent.probe`` trains, on the training frames of ``train_latent`` (the same
data, the same 64² frames), one of:

- ``plain``: a plain convolutional autoencoder (the reference: 64² → 16×16×64 → 64², L1, Adam),
  which shows what this data allows in a few hundred steps;
- ``repos``: RePos-Net's source → output path alone (appearance volume, 3D residual blocks, warp,
  occlusion, SPADE decoder), rendering each frame from itself with identical source and driving
  keypoints, so the warp is the identity and only the path from pixels to pixels is measured;

and prints a curve of held-out PSNR (the MEAD test identities, whole frame and face) against
steps, with the gradient norm per module and the occlusion map's mean. The autoencode setting of
:mod:`eat.latent.evaluate` is the same measurement on the fully trained model.

The colour augmentation (:class:`eat.latent.data.ColourAugmentation`) is the one the stage uses.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eat.config import LatentConfig, load_params
from eat.latent.data import ColourAugmentation, load_bank, to_tensor
from eat.latent.evaluate import psnr
from eat.latent.losses import face_mask
from eat.latent.train import training_tables
from eat.models.repos_net import RePosNet
from eat.paths import POSE_TABLE


class PlainAutoencoder(nn.Module):
    """Reference: conv 64² → 16×16 bottleneck → 64², BatchNorm + ReLU, sigmoid output.

    ``widths``: channels at 64², 32², the 16² bottleneck, then the decoder's 32² and 64² (default 32, 64, 64, 64, 32),
    so that single levels can be narrowed to RePos-Net's widths.
    """

    def __init__(self, widths: tuple[int, int, int, int, int] = (32, 64, 64, 64, 32)):
        super().__init__()
        e1, e2, bottleneck, d1, d2 = widths

        def block(a: int, b: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, 3, stride, 1), nn.BatchNorm2d(b), nn.ReLU()]

        self.encode = nn.Sequential(*block(3, e1, 1), *block(e1, e2, 2), *block(e2, bottleneck, 2))
        self.decode = nn.Sequential(nn.Upsample(scale_factor=2), *block(bottleneck, d1, 1), nn.Upsample(scale_factor=2),
                                    *block(d1, d2, 1), nn.Conv2d(d2, 3, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode(self.encode(x)))


class RePosAutoencoder(nn.Module):
    """RePos-Net rendering a frame from itself: identical keypoints make every candidate motion the identity."""

    def __init__(self, cfg: LatentConfig, seed: int):
        super().__init__()
        self.generator = RePosNet(cfg)
        self.register_buffer("kp", torch.rand(1, cfg.num_kp, 3, generator=torch.Generator().manual_seed(seed)) - 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kp = self.kp.expand(len(x), -1, -1)
        self.last = self.generator(x, kp, kp)
        return self.last["prediction"]


def grad_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of the gradient per top-level child module (RePos-Net: per box of its figure)."""
    root = model.generator if isinstance(model, RePosAutoencoder) else model
    out = {}
    for name, child in root.named_children():
        grads = [p.grad.norm() ** 2 for p in child.parameters() if p.grad is not None]
        if grads:
            out[name] = round(float(torch.stack(grads).sum().sqrt()), 5)
    return out


@torch.no_grad()
def heldout_psnr(model: nn.Module, frames: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Held-out PSNR over whole frames and the face, and the face PSNR once each output's per-channel face mean is
    moved onto the target's: the gap between the two is the error of carrying colours, the rest is shape/blur."""
    model.eval()
    out = torch.cat([model(frames[i:i + 64]) for i in range(0, len(frames), 64)])
    model.train()
    area = mask.sum((2, 3), keepdim=True).clamp(min=1)
    shift = ((frames - out) * mask).sum((2, 3), keepdim=True) / area
    return {"heldout_psnr": round(float(psnr(out, frames).mean()), 2),
            "heldout_face_psnr": round(float(psnr(out, frames, mask).mean()), 2),
            "heldout_face_psnr_colour_matched": round(float(psnr((out + shift).clamp(0, 1), frames, mask).mean()), 2)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=["plain", "repos"])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--pose-table", type=Path, default=POSE_TABLE)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--widths", default="32,64,64,64,32",
                    help="plain autoencoder's channels at 64², 32², 16² (bottleneck), 32², 64²")
    ap.add_argument("--colour", type=float, default=1.0, help="strength of the colour augmentation (0 = off)")
    ap.add_argument("--datasets", default="MEAD,LRW,VoxCeleb2", help="training datasets (comma-separated)")
    ap.add_argument("--identities", type=int, default=0, help="use only this many training identities (0 = all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-stride", type=int, default=8, help="score every n-th frame of each held-out clip")
    ap.add_argument("--latent", action="append", default=[], metavar="KEY=VALUE",
                    help="override a latent.* size for the repos model, e.g. gen_block_expansion=8")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    params = load_params(args.params)
    size, aligned = params.signal.image_size, params.crop_align.size
    train, held = training_tables(args.pose_table)
    train = train[train.dataset.isin(args.datasets.split(","))]
    if args.identities:
        keep = sorted(train.identity.unique())[:: max(1, train.identity.nunique() // args.identities)][:args.identities]
        train = train[train.identity.isin(keep)]
    bank, held_bank = load_bank(train, size, aligned), load_bank(held, size, aligned)
    pick = np.concatenate([held_bank.clip_frames(c)[::args.eval_stride] for c in range(len(held_bank.clips))])
    held_frames = to_tensor(held_bank.frames[pick])
    held_mask = torch.from_numpy(face_mask(held_bank.landmarks[pick], size, params.latent_train.face_margin))

    torch.manual_seed(params.seed)
    latent = params.latent.model_copy(update={k: int(v) for k, v in (o.split("=") for o in args.latent)})
    widths = tuple(int(w) for w in args.widths.split(","))
    model = PlainAutoencoder(widths) if args.model == "plain" else RePosAutoencoder(latent, params.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, 0.999))
    colour = ColourAugmentation(args.colour)
    rng = np.random.default_rng(params.seed)
    print(json.dumps({"model": args.model, "train_identities": int(train.identity.nunique()),
                      "train_frames": len(bank.frames), "heldout_frames": len(pick), "args": vars(args)}, default=str))
    start, loss = time.perf_counter(), torch.zeros(())
    for step in range(args.steps + 1):
        if step % args.eval_every == 0:
            row = {"step": step, **heldout_psnr(model, held_frames, held_mask),
                   "seconds": round(time.perf_counter() - start, 1)}
            if step:
                row |= {"train_l1": round(float(loss.detach()), 4), "grad": grad_norms(model)}
                if isinstance(model, RePosAutoencoder):
                    row["occlusion_mean"] = round(float(model.last["occlusion_map"].mean()), 3)
            print(json.dumps(row), flush=True)
        if step == args.steps:
            break
        idx = rng.integers(0, len(bank.frames), args.batch)
        x = to_tensor(bank.frames[idx])
        x = torch.stack([colour(f[None], np.random.default_rng([params.seed, step, b]))[0] for b, f in enumerate(x)])
        loss = F.l1_loss(model(x), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
