"""Probe: RePos-Net path with an exact identity warp (grid_sample align_corners=True) instead of the official False."""
import sys

import torch.nn.functional as F

import eat.models.dense_motion as dm
import eat.models.repos_net as rn
from eat.latent.probe import main


def warp_exact(volume, grid):
    return F.grid_sample(volume, grid, align_corners=True)

dm.warp = warp_exact
rn.warp = warp_exact

main(sys.argv[1:])
