"""Does the committed latent model blur training faces as much as held-out ones? (run from the repository root)

For the first clip of the held-out MEAD identities and of the training MEAD identities, six frames are rendered
from themselves (autoencode: identical keypoints, identity warp) with BatchNorm in eval mode (running statistics,
as evaluated) and in train mode (statistics of this one-clip batch), and re-enacted from the clip's first frame.
Prints PSNR over whole frames; writes rows ground truth / eval-mode autoencode / train-mode autoencode /
re-enacted, held-out identity first, to twelfth/train_vs_heldout.png.
"""

import sys

import numpy as np
import torch
from PIL import Image

from eat.config import load_params
from eat.latent.data import load_bank, to_tensor
from eat.latent.evaluate import psnr, reenact, reenact_pairs
from eat.latent.train import load_inference_model, training_tables

torch.set_num_threads(2)
params = load_params("params.yaml")
train, held = training_tables("data/features/pose.parquet")
nets = load_inference_model(sys.argv[1] if len(sys.argv) > 1 else "models/latent/enhanced/model.pt")
rows = []
for name, table in (("held-out", held), ("train", train[train.dataset == "MEAD"])):
    bank = load_bank(table.head(1), params.signal.image_size, params.crop_align.size)
    x = to_tensor(bank.frames[bank.clip_frames(0)[::10][:6]])
    nets.eval()
    eval_mode = reenact_pairs(nets, x, x)
    nets.train()
    train_mode = reenact_pairs(nets, x, x)
    nets.eval()
    moved = reenact(nets, x[:1], x)["prediction"]
    print(f"{name}: autoencode eval-mode BN {psnr(eval_mode, x).mean():.2f} dB, train-mode BN "
          f"{psnr(train_mode, x).mean():.2f} dB, re-enacted from frame 0 {psnr(moved, x).mean():.2f} dB, copy of "
          f"frame 0 {psnr(x[:1].expand_as(x), x).mean():.2f} dB")
    rows.append(torch.cat([torch.cat(list(t), 2) for t in (x, eval_mode, train_mode, moved)], 1))
image = (torch.cat(rows, 1).clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
Image.fromarray(image).save("docs/probes/latent/twelfth/train_vs_heldout.png", optimize=True)
