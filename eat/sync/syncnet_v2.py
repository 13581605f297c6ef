"""SyncNet v2 (Chung & Zisserman, "Out of time", ACCV-W 2016), as released in syncnet_python: the Sync metric.

Facts from syncnet_python (``SyncNetModel.py``, ``SyncNetInstance.py``), whose pretrained
``syncnet_v2.model`` the paper's Sync confidence uses (docs/paper_notes.md §7: PC-AVS preprocessing, ±15 frames):

- Audio stream ``netcnnaud`` + ``netfcaud``: MFCC window (B, 1, 13, 20): 13 coefficients × 20 steps
  of 10 ms (0.2 s, 4 MFCC steps per 25 fps video frame). Conv 3×3 64 → 192 (max-pool 3×3 stride
  (1, 2)) → 384 → 256 → 256 (max-pool 3×3 stride 2) → conv 5×4 to 512 (1×1 map), each conv with
  BatchNorm and ReLU; then Linear 512→512, BatchNorm1d, ReLU, Linear 512→1024.
- Video stream ``netcnnlip`` + ``netfclip``: 5 colour frames (B, 3, 5, 224, 224) — BGR as OpenCV
  reads them, raw 0…255, no normalisation. Conv3d (5, 7, 7) stride (1, 2, 2) to 96 (the 5 frames
  collapse to 1), max-pool, (1, 5, 5) stride 2 to 256, max-pool, three (1, 3, 3) convs at 256,
  max-pool, (1, 6, 6) to 512 (1×1 map), each with BatchNorm3d and ReLU; the same FC head → 1024.
- Parameter names are the ``nn.Sequential`` indices of those four blocks
  (``netcnnaud.0.weight`` … ``netfclip.3.bias``); the released file is a plain state dict.
- MFCCs: ``python_speech_features.mfcc`` defaults on the 16 kHz int16 samples (pre-emphasis 0.97,
  25 ms rectangular frames every 10 ms, 512-point FFT, 26 mel filters 0–8 kHz, log, orthonormal
  DCT-II, 13 coefficients, lifter 22, c0 replaced by the log frame energy): :func:`syncnet_mfcc`.
- Windows: video frame window ``i`` = frames ``i … i+4``, audio = MFCC steps ``4i … 4i+19``, for
  ``i < min(T, samples // 640) − 5`` (syncnet_python stops one window short; kept so that numbers
  compare): :func:`syncnet_v2_embeddings`. Offsets and confidence: metrics/sync.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.fft
import torch
from torch import nn

from eat.weights import REGISTRY, WeightsError, resolve

EMBED_DIM = 1024
FRAMES = 5                 # video frames per window
MFCC_STEPS = 20            # 10 ms MFCC steps per window (0.2 s)
MFCC_PER_FRAME = 4         # 100 Hz MFCC / 25 fps video
FACE_SIZE = 224
RATE = 16000


def _conv_bn_relu(conv: nn.Module, bn: nn.Module) -> list[nn.Module]:
    return [conv, bn, nn.ReLU(inplace=True)]


def _audio_cnn() -> nn.Sequential:
    """(B, 1, 13, 20) → (B, 512, 1, 1); layer order fixes the state-dict indices."""
    def c2(cin, cout, k):
        return _conv_bn_relu(nn.Conv2d(cin, cout, k, padding=(1, 1) if k == 3 else 0), nn.BatchNorm2d(cout))
    return nn.Sequential(
        *c2(1, 64, 3), nn.MaxPool2d(1, 1),
        *c2(64, 192, 3), nn.MaxPool2d(3, (1, 2)),
        *c2(192, 384, 3), *c2(384, 256, 3), *c2(256, 256, 3), nn.MaxPool2d(3, 2),
        *c2(256, 512, (5, 4)))


def _lip_cnn() -> nn.Sequential:
    """(B, 3, 5, 224, 224) → (B, 512, 1, 1, 1); layer order fixes the state-dict indices."""
    def c3(cin, cout, k, stride=1, padding=0):
        return _conv_bn_relu(nn.Conv3d(cin, cout, k, stride, padding), nn.BatchNorm3d(cout))
    return nn.Sequential(
        *c3(3, 96, (5, 7, 7), (1, 2, 2)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        *c3(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        *c3(256, 256, (1, 3, 3), 1, (0, 1, 1)), *c3(256, 256, (1, 3, 3), 1, (0, 1, 1)),
        *c3(256, 256, (1, 3, 3), 1, (0, 1, 1)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        *c3(256, 512, (1, 6, 6)))


def _fc_head() -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, EMBED_DIM))


class SyncNetV2(nn.Module):
    """syncnet_python's network ``S``: MFCC window → (B, 1024), 5-frame face window → (B, 1024).

    Embeddings are not normalised (the offset search uses Euclidean distances between them).
    """

    def __init__(self):
        super().__init__()
        self.netcnnaud = _audio_cnn()
        self.netfcaud = _fc_head()
        self.netfclip = _fc_head()
        self.netcnnlip = _lip_cnn()

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(B, 1, 13, 20) MFCC windows → (B, 1024)."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, 5, 224, 224) BGR 0…255 face windows → (B, 1024)."""
        return self.netfclip(self.netcnnlip(frames).flatten(1))


def load_syncnet_v2(folder: Path | str | None = None) -> SyncNetV2:
    """The pretrained SyncNet v2 in eval mode from the registry file ``syncnet_v2.model``.

    Raises :class:`~eat.weights.WeightsError` when the file is missing (naming it and where to put
    it) or does not hold this architecture's parameters.
    """
    path = resolve("syncnet_v2", folder)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = SyncNetV2()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise WeightsError(f"weights 'syncnet_v2': {path} does not hold syncnet_python's SyncNet v2 parameters "
                           f"({REGISTRY['syncnet_v2'].source}): {str(err).splitlines()[0]}") from None
    return model.eval()


def _mfcc_filterbank(rate: int, n_fft: int = 512, n_filters: int = 26) -> np.ndarray:
    """(26, 257) python_speech_features' triangles: edges on FFT bins floor((n_fft + 1) · f / rate)."""
    mel = np.linspace(0.0, 2595 * np.log10(1 + (rate / 2) / 700.0), n_filters + 2)
    bins = np.floor((n_fft + 1) * 700 * (10 ** (mel / 2595.0) - 1) / rate)
    fb = np.zeros((n_filters, n_fft // 2 + 1))
    k = np.arange(n_fft // 2 + 1)
    for j in range(n_filters):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        rise = (k >= lo) & (k < mid)
        fall = (k >= mid) & (k < hi)
        fb[j, rise] = (k[rise] - lo) / (mid - lo)
        fb[j, fall] = (hi - k[fall]) / (hi - mid)
    return fb


def syncnet_mfcc(samples: np.ndarray, rate: int = RATE) -> np.ndarray:
    """(N,) audio → (13, S) float32 MFCCs at 100 Hz, python_speech_features' ``mfcc`` defaults.

    Integer samples are used as they are; float samples in [-1, 1] are scaled by 32768 first, so that
    the log-energy coefficient c0 matches syncnet_python, which reads int16 wav samples. Frame ``j``
    covers samples ``[160 j, 160 j + 400)``, zero-padded at the end;
    ``S = 1 + ceil((N − 400) / 160)``.
    """
    x = np.asarray(samples)
    x = x.astype(np.float64) * (1.0 if np.issubdtype(x.dtype, np.integer) else 32768.0)
    win, hop, n_fft = round(0.025 * rate), round(0.01 * rate), 512
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])
    n = 1 if len(x) <= win else 1 + math.ceil((len(x) - win) / hop)
    x = np.concatenate([x, np.zeros((n - 1) * hop + win - len(x))])
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n]
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2 / n_fft
    tiny = np.finfo(float).eps
    energy = np.where(power.sum(1) == 0, tiny, power.sum(1))
    feat = power @ _mfcc_filterbank(rate, n_fft).T
    feat = scipy.fft.dct(np.log(np.where(feat == 0, tiny, feat)), type=2, axis=1, norm="ortho")[:, :13]
    feat *= 1 + 11.0 * np.sin(np.pi * np.arange(13) / 22)        # lifter L = 22: 1 + (L / 2) sin(π n / L)
    feat[:, 0] = np.log(energy)
    return feat.T.astype(np.float32)


@torch.no_grad()
def syncnet_v2_embeddings(model: SyncNetV2, frames: torch.Tensor, samples: np.ndarray, rate: int = RATE,
                          batch_size: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-window embeddings of a clip: video (N, 1024) and audio (N, 1024), syncnet_python's windows.

    ``frames``: (T, 3, 224, 224) RGB face crops in [0, 1] at 25 fps (converted here to the network's
    BGR 0…255); ``samples``: the clip's 16 kHz audio. ``N = min(T, len(samples) // 640) − 5``; window
    ``i`` is frames ``i … i+4`` and MFCC steps ``4i … 4i+19``. Feed the result to
    :func:`metrics.sync.evaluate_offset`.
    """
    if rate != RATE:
        raise ValueError(f"SyncNet v2 expects {RATE} Hz audio, got {rate} Hz (resample first)")
    if frames.shape[1:] != (3, FACE_SIZE, FACE_SIZE):
        raise ValueError(f"SyncNet v2 expects (T, 3, {FACE_SIZE}, {FACE_SIZE}) face crops, got {tuple(frames.shape)}")
    n = min(len(frames), len(samples) // (rate // 25)) - FRAMES
    if n < 1:
        raise ValueError(f"clip too short for SyncNet v2: {len(frames)} frames, {len(samples)} samples "
                         f"(needs at least {FRAMES + 1} frames of video and audio)")
    device = next(model.parameters()).device
    video = (frames.flip(1) * 255.0).permute(1, 0, 2, 3).unsqueeze(0)           # (1, 3, T, 224, 224) BGR
    mfcc = torch.from_numpy(syncnet_mfcc(samples, rate))[None, None]          # (1, 1, 13, S)
    v_out, a_out = [], []
    for i in range(0, n, batch_size):
        idx = range(i, min(n, i + batch_size))
        v_in = torch.cat([video[:, :, j:j + FRAMES] for j in idx])
        a_in = torch.cat([mfcc[..., MFCC_PER_FRAME * j:MFCC_PER_FRAME * j + MFCC_STEPS] for j in idx])
        v_out.append(model.forward_lip(v_in.to(device)).cpu())
        a_out.append(model.forward_aud(a_in.to(device)).cpu())
    return torch.cat(v_out), torch.cat(a_out)
