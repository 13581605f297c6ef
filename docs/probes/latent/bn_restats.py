"""Autoencode held-out face PSNR of the committed latent models: BatchNorm running statistics from training vs
statistics re-estimated on the held-out frames. Run from the repository root."""
import numpy as np
import torch

from eat.config import load_params
from eat.latent.data import load_bank, to_tensor
from eat.latent.evaluate import psnr, reenact_pairs, scored_frames
from eat.latent.losses import face_mask
from eat.latent.train import load_inference_model, training_tables

torch.set_num_threads(2)
p = load_params("params.yaml")
_, held = training_tables("data/features/pose.parquet")

bank = load_bank(held, p.signal.image_size, p.crop_align.size)
idx = np.concatenate([scored_frames(bank, c, 8) for c in range(len(bank.clips))])
frames = to_tensor(bank.frames[idx])
mask = torch.from_numpy(face_mask(bank.landmarks[idx], bank.size, 0.1))


def rendered(nets) -> torch.Tensor:
    return torch.cat([reenact_pairs(nets, frames[i:i + 32], frames[i:i + 32]) for i in range(0, len(frames), 32)])


def score(nets) -> float:
    with torch.no_grad():
        return float(psnr(rendered(nets), frames, mask).mean())


for variant in ("osfv", "enhanced"):
    nets = load_inference_model(f"models/latent/{variant}/model.pt")
    before = score(nets)
    bns = [m for m in nets.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    nets.train()
    with torch.no_grad():
        rendered(nets)
    nets.eval()
    after = score(nets)
    print(f"{variant}: autoencode face PSNR, training BN stats {before:.2f} dB; re-estimated on held-out frames "
          f"{after:.2f} dB ({len(bns)} BN layers, {len(frames)} frames)")
