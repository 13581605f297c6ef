"""Frozen VGG19 feature extractor for the perceptual loss (OSFV / first-order-model, EAT's L_per).

The network is torchvision's VGG19 (``torchvision.models.vgg19``; only its convolutional
``features`` are built, via the same ``make_layers(cfgs["E"])`` call) cut into the five
slices of first-order-model's perceptual loss, ending at relu1_1, relu2_1, relu3_1, relu4_1
and relu5_1 (``features[0:2]``, ``[2:7]``, ``[7:12]``, ``[12:21]``, ``[21:30]``).

Weights come from the registry entry ``vgg19`` (torchvision's ImageNet file
``vgg19-dcbb9e9d.pth``, placed by the user; nothing is downloaded). Without that file a
*substitute* is used: the same architecture with fixed random weights, drawn from a seed.
Random convolutional features are a usable, if weaker, perceptual prior: random-weight
networks reconstruct and synthesise natural images and textures (He, Wang & Hopcroft,
"A Powerful Generative Model Using Random Weights for the Deep Image Representation",
NeurIPS 2016; Ustyuzhaninov et al., "What does it take to generate natural textures?",
ICLR 2017), an untrained network's structure is itself an image prior (Ulyanov, Vedaldi &
Lempitsky, "Deep Image Prior", CVPR 2018), and distances in random deep features track
perceptual similarity far better than pixel distances (Amir & Weiss, "Understanding and
Simplifying Perceptual Distances", CVPR 2021). Numbers made with it are not comparable to
the paper's, so :func:`load_vgg19` returns an info dict that reports must carry.

Per-layer scale. ImageNet VGG19 is used as is, so OSFV's weights ([10] × 5) keep their
meaning. Random features, by contrast, drift in magnitude through depth (max-pooling and
ReLU of random filters), so with equal loss weights one layer would dominate. The
substitute therefore divides each slice's output by a constant: its mean absolute
activation on a fixed batch of uniform-noise images (drawn from the same seed) measured
once at construction. Every layer then has mean |feature| = 1 on noise and contributes
comparably; the constants are a deterministic function of the seed (buffer ``layer_scale``).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from eat.weights import REGISTRY, WeightsError, resolve

SLICE_ENDS = (2, 7, 12, 21, 30)      # features[:2] → relu1_1, …, features[21:30] → relu5_1
LAYER_NAMES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_NOISE_SHAPE = (4, 3, 64, 64)        # the batch the substitute's per-layer scales are measured on


class VGG19Features(nn.Module):
    """(B, 3, H, W) image in [0, 1] → five VGG19 feature maps, relu1_1 … relu5_1.

    Shapes: (B, 64, H, W), (B, 128, H/2, W/2), (B, 256, H/4, W/4), (B, 512, H/8, W/8),
    (B, 512, H/16, W/16). Frozen: parameters need no gradient and the module stays in eval
    mode, but gradients flow through it to the input (the generated image).

    Build it with :func:`load_vgg19`; ``layer_scale`` (5,) divides each slice's output
    (ones for ImageNet weights).
    """

    def __init__(self, features: nn.Sequential, layer_scale: torch.Tensor | None = None):
        super().__init__()
        starts = (0, *SLICE_ENDS[:-1])
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(starts, SLICE_ENDS, strict=True))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.register_buffer("layer_scale", torch.ones(len(SLICE_ENDS)) if layer_scale is None else layer_scale)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:
        """Always eval: the loss network is fixed."""
        return super().train(False)

    def forward(self, image: torch.Tensor, depth: int = len(SLICE_ENDS)) -> list[torch.Tensor]:
        """The first ``depth`` feature maps; deeper slices are not run (a loss that weights them 0 needs none)."""
        h = (image - self.mean) / self.std
        out = []
        for block, scale in zip(self.slices[:depth], self.layer_scale[:depth], strict=True):
            h = block(h)
            out.append(h / scale)
        return out


def vgg19_layers() -> nn.Sequential:
    """VGG19's convolutional trunk up to relu5_1 (``features[:30]``), default-initialised."""
    with torch.random.fork_rng(devices=[]):     # leave the caller's global RNG stream untouched
        features = make_layers(cfgs["E"], batch_norm=False)
    return features[: SLICE_ENDS[-1]]


def imagenet_vgg19(state_dict: dict[str, torch.Tensor]) -> VGG19Features:
    """VGG19Features from torchvision's checkpoint (its ``features.N.*`` keys; classifier ignored)."""
    layers = vgg19_layers()
    prefix = "features."
    wanted = {k[len(prefix):]: v for k, v in state_dict.items()
              if k.startswith(prefix) and int(k[len(prefix):].split(".")[0]) < SLICE_ENDS[-1]}
    layers.load_state_dict(wanted, strict=True)
    return VGG19Features(layers)


def substitute_vgg19(seed: int) -> VGG19Features:
    """VGG19Features with fixed random weights: kaiming-normal convs (fan_in, ReLU gain), zero bias.

    Deterministic for ``seed``; each slice is normalised to mean |feature| = 1 on uniform noise
    (module docstring).
    """
    gen = torch.Generator().manual_seed(seed)
    layers = vgg19_layers()
    for m in layers:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=gen)
            nn.init.zeros_(m.bias)
    vgg = VGG19Features(layers)
    noise = torch.rand(_NOISE_SHAPE, generator=gen)
    with torch.no_grad():
        scale = torch.stack([f.abs().mean() for f in vgg(noise)])
    vgg.layer_scale.copy_(scale.clamp_min(1e-12))
    return vgg


def load_vgg19(mode: str = "auto", seed: int = 0) -> tuple[VGG19Features, dict]:
    """The perceptual-loss network for ``LatentTrainConfig.vgg_weights`` and a label for reports.

    ``mode``: 'imagenet' needs ``vgg19-dcbb9e9d.pth`` in the weights folder (else
    :class:`~eat.weights.WeightsError` saying where to put it); 'substitute' is the seeded
    random VGG19; 'auto' takes the file when present and valid, else the substitute.
    Returns ``(vgg, {"vgg19": "imagenet" | "substitute", "substitute": bool, "note": str})``.
    """
    if mode not in ("auto", "imagenet", "substitute"):
        raise ValueError(f"vgg_weights must be auto, imagenet or substitute, got {mode!r}")
    reason = "vgg_weights: substitute"
    if mode != "substitute":
        try:
            path = resolve("vgg19")
        except WeightsError as err:
            if mode == "imagenet":
                raise
            reason = str(err)
        else:
            vgg = imagenet_vgg19(torch.load(path, map_location="cpu", weights_only=True))
            return vgg, {"vgg19": "imagenet", "substitute": False,
                         "note": f"torchvision ImageNet VGG19 from {path}"}
    note = (f"substitute: randomly initialised VGG19 (seed {seed}, kaiming-normal, per-layer normalised), "
            f"not {REGISTRY['vgg19'].filename}; perceptual values are not comparable to the paper's ({reason})")
    return substitute_vgg19(seed), {"vgg19": "substitute", "substitute": True, "note": note}
