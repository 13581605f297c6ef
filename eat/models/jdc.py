"""JDC F0 network (Kum & Nam 2019, "Joint Detection and Classification of Singing Voice Melody"), as StarGANv2-VC
uses it and the official EAT A2ET embeds it (``f0_model.*``, 5,248,067 parameters at the official sizes).

A2ET only reads its intermediate "GAN feature" (:meth:`JDCNet.features`): the pitch evidence of the mel, which the
audio encoder concatenates at its bottleneck. The pitch classifier and voicing detector heads are kept so the
official ``bst.t7`` weights load by name.

    mel (B, 1, n_mels, T) → conv_block → res_block1..3 (each halves the frequency axis) → BN-LeakyReLU
        → features (B, C₃, n_mels/8, T)
    + the heads: max-pool to 2 frequency bins, BiLSTMs over time → pitch (B, T, 1), voicing logits (B, T, 2)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from eat.config import A2ETConfig

SLOPE = 0.01   # LeakyReLU slope of the JDC network


class JDCResBlock(nn.Module):
    """BN → LeakyReLU → max-pool (1, 2) on frequency, then conv-BN-LReLU-conv plus a 1×1 (or identity) skip.

    (B, C_in, T, F) → (B, C_out, T, F/2); time is the height axis inside JDC.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.pre_conv = nn.Sequential(nn.BatchNorm2d(in_channels), nn.LeakyReLU(SLOPE), nn.MaxPool2d((1, 2)))
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(SLOPE), nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False))
        self.conv1by1 = nn.Conv2d(in_channels, out_channels, 1, bias=False) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_conv(x)
        return self.conv(x) + (self.conv1by1(x) if self.conv1by1 is not None else x)


class JDCNet(nn.Module):
    """The official ``JDCNet(num_class=1)``: widths ``a2et.jdc_channels``, BiLSTM width ``a2et.jdc_lstm_hidden``."""

    def __init__(self, cfg: A2ETConfig, n_mels: int):
        super().__init__()
        c0, c1, c2, c3 = cfg.jdc_channels
        if n_mels % 8 or n_mels // 8 < 4:
            raise ValueError(f"signal.n_mels = {n_mels}: the JDC network needs a multiple of 8, at least 32")
        self.conv_block = nn.Sequential(
            nn.Conv2d(1, c0, 3, padding=1, bias=False), nn.BatchNorm2d(c0), nn.LeakyReLU(SLOPE),
            nn.Conv2d(c0, c0, 3, padding=1, bias=False))
        self.res_block1 = JDCResBlock(c0, c1)
        self.res_block2 = JDCResBlock(c1, c2)
        self.res_block3 = JDCResBlock(c2, c3)
        self.pool_block = nn.Sequential(nn.BatchNorm2d(c3), nn.LeakyReLU(SLOPE), nn.MaxPool2d((1, 4)), nn.Dropout(0.5))
        # the heads see every stage max-pooled to the width the pool block leaves (80 mels: 2 bins)
        self.bins = (n_mels // 8) // 4
        self.aux_kernels = (n_mels // self.bins, n_mels // 2 // self.bins, n_mels // 4 // self.bins)
        self.detector_conv = nn.Sequential(
            nn.Conv2d(c0 + c1 + c2 + c3, c3, 1, bias=False), nn.BatchNorm2d(c3), nn.LeakyReLU(SLOPE), nn.Dropout(0.5))
        hidden, width = cfg.jdc_lstm_hidden, c3 * self.bins
        self.bilstm_classifier = nn.LSTM(width, hidden, batch_first=True, bidirectional=True)
        self.bilstm_detector = nn.LSTM(width, hidden, batch_first=True, bidirectional=True)
        self.classifier = nn.Linear(2 * hidden, 1)
        self.detector = nn.Linear(2 * hidden, 2)

    def _stages(self, mel: torch.Tensor) -> list[torch.Tensor]:
        x = self.conv_block(mel.transpose(-1, -2))            # (B, 1, n_mels, T) → time as height: (B, C, T, n_mels)
        stages = [x]
        for block in (self.res_block1, self.res_block2, self.res_block3):
            stages.append(block(stages[-1]))
        return stages

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """The F0 feature map the audio encoder consumes: (B, 1, n_mels, T) → (B, C₃, n_mels/8, T)."""
        last = self._stages(mel)[-1]
        return self.pool_block[1](self.pool_block[0](last)).transpose(-1, -2)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pitch (B, T) (non-negative, the official single class) and voicing logits (B, T, 2)."""
        stages = self._stages(mel)
        pooled = self.pool_block(stages[-1])                                   # (B, C₃, T, bins)
        b, _, t, _ = pooled.shape
        pitch, _ = self.bilstm_classifier(pooled.permute(0, 2, 1, 3).reshape(b, t, -1))
        aux = [F.max_pool2d(s, (1, k)) for s, k in zip(stages[:3], self.aux_kernels, strict=True)]
        detector = self.detector_conv(torch.cat([*aux, pooled], dim=1))
        voicing, _ = self.bilstm_detector(detector.permute(0, 2, 1, 3).reshape(b, t, -1))
        return self.classifier(pitch).squeeze(-1).abs(), self.detector(voicing)
