"""Autoencode held-out face PSNR of the committed latent models: BatchNorm running stats vs stats re-estimated on held-out frames."""
import numpy as np, torch
from eat.config import load_params
from eat.latent.train import training_tables, load_inference_model
from eat.latent.data import load_bank, to_tensor
from eat.latent.evaluate import scored_frames, reenact_pairs, psnr
from eat.latent.losses import face_mask
torch.set_num_threads(2)
p = load_params('params.yaml')
_, held = training_tables('data/features/pose.parquet')

bank = load_bank(held, p.signal.image_size, p.crop_align.size)
idx = np.concatenate([scored_frames(bank, c, 8) for c in range(len(bank.clips))])
frames = to_tensor(bank.frames[idx]); mask = torch.from_numpy(face_mask(bank.landmarks[idx], bank.size, 0.1))
def score(nets):
    with torch.no_grad():
        out = torch.cat([reenact_pairs(nets, frames[i:i+32], frames[i:i+32]) for i in range(0, len(frames), 32)])
    return float(psnr(out, frames, mask).mean())
for variant in ('osfv', 'enhanced'):
    nets = load_inference_model(f'models/latent/{variant}/model.pt')
    a = score(nets)
    bns = [m for m in nets.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns: m.reset_running_stats(); m.momentum = None
    nets.train()
    with torch.no_grad():
        for i in range(0, len(frames), 32): reenact_pairs(nets, frames[i:i+32], frames[i:i+32])
    nets.eval()
    b = score(nets)
    print(f'{variant}: autoencode face PSNR, training BN stats {a:.2f} dB; re-estimated on held-out frames {b:.2f} dB ({len(bns)} BN layers, {len(frames)} frames)')
