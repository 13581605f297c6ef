"""A2ET, the audio-to-expression transformer (Sec. 3.1.2 and App. A of the paper); the official ``audio2kptransformer``.

For frame i and its window of W = 2w + 1 frames (official W = 11):

    encoder tokens  (W + 1):  per frame j, Linear-LReLU-Linear([pose-image feature_j, speech feature S_j])
                              + one head-pose token from frame i's 6 DoF (angles, rotation matrices, translation)
    decoder queries (W + 1):  per frame j, down-residual CNN([audio map_j, source face map]) + the same pose token
                              audio map_j = conv of the audio encoder's output (mel A_{i-w:i+w} ⊕ JDC F0 features)
                              face map = per-pixel Linear of the keypoint detector's logits of the source image
    + one emotion-prompt token at the end of both (when prompts are given, Sec. 3.2), then sinusoidal positions;
    post-norm encoder (no final norm) and decoder (final LayerNorm); output PE_i = Linear(centre query) ∈ R^32.

Prompt modes (Table 4): ``deep`` replaces the last token by the layer's own prompt e_{l+1} before every layer l of
the encoder and of the decoder (the official ``TransformerDeep``); ``shallow`` appends e1 once, at the input;
``none`` (or prompts = None, as in pretraining) has no prompt token. The emotion token e0 drives the adaptation
hooks: the audio encoder's AdaIN layers and the feature EAM ``fea`` on the face map.

Usage (B windows; the face map is computed once per source image)::

    face = a2et.face_feature(source_keypoint_logits(kp_detector, source), e0)    # (B, F, s, s)
    pe = a2et(speech, pose, pose_image, mel, face, prompts, e0)                   # (B, 32)

Attribute names are the official ones, so the converted official checkpoint loads by name.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from eat.config import A2ET_POSITIONS, A2ETConfig, LatentConfig, SignalConfig
from eat.features.alphabet import N_SYMBOLS
from eat.models.audio_encoder import AudioEncoder
from eat.models.eam import EAM
from eat.models.jdc import JDCNet
from eat.models.keypoint_detector import KeypointDetector
from eat.models.keypoints import POSE_RANGE_SPAN, POSE_RANGE_START, rotation_matrix

PromptMode = Literal["none", "shallow", "deep"]
PHONEMES = 41           # rows of the official (unused) phoneme embedding
POSE_TOKEN_DIM = 45     # 3 angles + 3 radians + 4 rotation matrices (9 each) + 3 translations
AUDIO_MAP_HIDDEN = 8    # official audio_embedding2: Conv2d(1, 8, (3, 17)) → BN → ReLU → Conv2d(8, 32, 13)
SPEECH_SLOPE = 0.02     # LeakyReLU slope of the speech and token MLPs (official)

# ---------------------------------------------------------------------------------------------------------------
# Building blocks


class PositionalEncoding(nn.Module):
    """Fixed sinusoid table ``pos_table`` (1, positions, d): sin on even, cos on odd channels (Vaswani et al.)."""

    def __init__(self, d_model: int, positions: int = A2ET_POSITIONS):
        super().__init__()
        position = torch.arange(positions, dtype=torch.float64)[:, None]
        rate = 10000.0 ** (2 * (torch.arange(d_model) // 2) / d_model)
        angles = position / rate
        table = torch.where(torch.arange(d_model) % 2 == 0, angles.sin(), angles.cos())
        self.register_buffer("pos_table", table.float().unsqueeze(0))

    def forward(self, length: int) -> torch.Tensor:
        """(1, length, d)."""
        if length > self.pos_table.shape[1]:
            raise ValueError(f"{length} tokens exceed the {self.pos_table.shape[1]} positions of the table")
        return self.pos_table[:, :length]


class NormActConv(nn.Module):
    """BatchNorm → (LeakyReLU 0.2) → conv, as ``layers.norm`` / ``layers.conv`` (the official Imaginaire block)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, activation: bool = True):
        super().__init__()
        steps: list[tuple[str, nn.Module]] = [("norm", nn.BatchNorm2d(in_channels))]
        if activation:
            steps.append(("act", nn.LeakyReLU(0.2)))
        steps.append(("conv", nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)))
        self.layers = nn.Sequential(OrderedDict(steps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class DownResBlock2d(nn.Module):
    """Pre-activation residual block, then 2×2 average pooling: (B, C_in, H, W) → (B, C_out, H/2, W/2).

    Residual: two BN-LReLU-conv 3×3 through min(C_in, C_out) channels; shortcut: BN-conv 1×1 when C_in ≠ C_out.
    The official ``mydownres2Dblock`` (order NACNAC).
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        hidden = min(in_channels, out_channels)
        self.conv_block_0 = NormActConv(in_channels, hidden, 3)
        self.conv_block_1 = NormActConv(hidden, out_channels, 3)
        if in_channels != out_channels:
            self.conv_block_s = NormActConv(in_channels, out_channels, 1, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_block_s(x) if hasattr(self, "conv_block_s") else x
        return F.avg_pool2d(shortcut + self.conv_block_1(self.conv_block_0(x)), 2)


def down_res_stack(in_channels: int, channels: list[int]) -> nn.Sequential:
    """DownResBlock2d per width; the caller averages the last map ((B, C, 2, 2) at the official sizes) to a vector."""
    widths = [in_channels, *channels]
    return nn.Sequential(*(DownResBlock2d(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True)))


def pooled(stack: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """Run a :func:`down_res_stack` and average over space (the official final AvgPool2d(2) on a 2×2 map)."""
    return stack(x).mean(dim=(2, 3))


# ---------------------------------------------------------------------------------------------------------------
# Transformer with emotion prompts (post-norm DETR-style layers; positions are added once, at the input)


class PromptedEncoder(nn.Module):
    """Self-attention layers over (B, N, d); with ``deep`` prompts (B, P ≥ layers, d), layer l > 0 first replaces
    the last token by prompts[:, l] (layer 0's prompt is already in the input)."""

    def __init__(self, cfg: A2ETConfig, layers: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, cfg.ffn_dim, cfg.dropout, batch_first=True)
            for _ in range(layers))

    def forward(self, x: torch.Tensor, deep: torch.Tensor | None = None) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            if deep is not None and i > 0:
                x = torch.cat([x[:, :-1], deep[:, i:i + 1]], dim=1)
            x = layer(x)
        return x


class PromptedDecoder(nn.Module):
    """Self- then cross-attention layers over queries (B, N, d) and memory (B, M, d), final LayerNorm ``norm``;
    deep prompts are swapped in as in :class:`PromptedEncoder`."""

    def __init__(self, cfg: A2ETConfig, layers: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(cfg.d_model, cfg.heads, cfg.ffn_dim, cfg.dropout, batch_first=True)
            for _ in range(layers))
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, deep: torch.Tensor | None = None) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            if deep is not None and i > 0:
                x = torch.cat([x[:, :-1], deep[:, i:i + 1]], dim=1)
            x = layer(x, memory)
        return self.norm(x)


class PromptTransformer(nn.Module):
    """``encoder`` (and ``decoder`` unless ``encoder_only``, as in EDN); Xavier-uniform matrices (official init)."""

    def __init__(self, cfg: A2ETConfig, encoder_only: bool = False):
        super().__init__()
        self.encoder = PromptedEncoder(cfg, cfg.encoder_layers)
        if not encoder_only:
            self.decoder = PromptedDecoder(cfg, cfg.decoder_layers)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)


# ---------------------------------------------------------------------------------------------------------------
# Inputs


def head_pose_features(pose: torch.Tensor, angles: Literal["degrees", "official_bins"] = "degrees",
                       bins: int = 66) -> torch.Tensor:
    """The pose token's 45 numbers from 6 DoF (B, 6) = (yaw, pitch, roll in degrees, tx, ty, tz) → (B, 45):

    [yaw, pitch, roll, the same in radians, R_yaw, R_pitch, R_roll, R = R_pitch·R_yaw·R_roll (row-major 3×3 each),
    tx, ty, tz] — the official ``rotation_and_translation`` layout. ``official_bins`` reproduces what the official
    code feeds: the expectation of the pose-bin *index* (0…65) used as if it were degrees, and π ≈ 3.14.
    """
    yaw, pitch, roll = pose[:, 0], pose[:, 1], pose[:, 2]
    if angles == "official_bins":
        yaw, pitch, roll = ((a - POSE_RANGE_START) * bins / POSE_RANGE_SPAN for a in (yaw, pitch, roll))
        radians = torch.stack([yaw, pitch, roll], dim=1) / 180 * 3.14
        trig = [a * 3.14 / math.pi for a in (yaw, pitch, roll)]      # rotation_matrix takes degrees, exact π
    else:
        radians = torch.deg2rad(torch.stack([yaw, pitch, roll], dim=1))
        trig = [yaw, pitch, roll]
    zero = torch.zeros_like(yaw)
    r_yaw, r_pitch, r_roll = (rotation_matrix(trig[0], zero, zero), rotation_matrix(zero, trig[1], zero),
                              rotation_matrix(zero, zero, trig[2]))
    r = rotation_matrix(*trig)
    mats = [m.flatten(1) for m in (r_yaw, r_pitch, r_roll, r)]
    return torch.cat([torch.stack([yaw, pitch, roll], dim=1), radians, *mats, pose[:, 3:6]], dim=1)


def source_keypoint_logits(kp_detector: KeypointDetector, source: torch.Tensor) -> torch.Tensor:
    """The keypoint detector's heatmap logits before the softmax (official ``prediction_map``):
    source (B, 3, H, W) → (B, k, D, h, w), h = H · kp_scale_factor."""
    return kp_detector.kp(kp_detector.predictor(kp_detector.down(source)))


# ---------------------------------------------------------------------------------------------------------------
# A2ET


class A2ET(nn.Module):
    """Audio-to-expression transformer: one window → the centre frame's PCA coefficients PE_i (B, pca_components).

    Sizes: ``a2et`` (widths), ``latent`` (k, D, pose bins, PCA size), ``signal`` (n_mels, window).
    """

    def __init__(self, cfg: A2ETConfig, latent: LatentConfig, signal: SignalConfig, prompt_mode: PromptMode = "deep"):
        super().__init__()
        d, window = cfg.d_model, signal.window_frames
        if window + 2 > A2ET_POSITIONS:
            raise ValueError(f"signal.window_frames = {window}: A2ET has {A2ET_POSITIONS} positions for W + 2 tokens")
        if signal.n_mels % 2 ** cfg.audio_down_blocks or signal.n_mels < cfg.audio_channels:
            raise ValueError(f"signal.n_mels = {signal.n_mels} must be divisible by 2^a2et.audio_down_blocks and at "
                             f"least a2et.audio_channels = {cfg.audio_channels} (the audio map is square)")
        if cfg.phoneme_embedding_dim:
            self.embedding = nn.Embedding(PHONEMES, cfg.phoneme_embedding_dim)   # unused, as in the official code
        self.face_shrink = nn.Linear(latent.num_kp * latent.reshape_depth, cfg.face_channels)
        self.hp_extractor = nn.Linear(POSE_TOKEN_DIM, d)
        self.pos_enc = PositionalEncoding(d)
        speech = [N_SYMBOLS, *cfg.speech_channels]
        self.audio_embedding = nn.Sequential(*(m for a, b in zip(speech[:-1], speech[1:], strict=True) for m in (
            nn.Conv1d(a, b, 3, stride=2, padding=1), nn.LeakyReLU(SPEECH_SLOPE))))
        self.encoder_fc1 = nn.Sequential(nn.Linear(cfg.pose_channels[-1] + cfg.speech_channels[-1], d),
                                         nn.LeakyReLU(SPEECH_SLOPE), nn.Linear(d, d))
        kernel_w = signal.n_mels - cfg.audio_channels + 1         # official 80 − 64 + 1 = 17: a square audio map
        self.audio_embedding2 = nn.Sequential(
            nn.Conv2d(1, AUDIO_MAP_HIDDEN, (3, kernel_w), padding=(1, 0)), nn.BatchNorm2d(AUDIO_MAP_HIDDEN), nn.ReLU(),
            nn.Conv2d(AUDIO_MAP_HIDDEN, cfg.face_channels, 13, padding=6))
        self.audioencoder = AudioEncoder(cfg, cfg.jdc_channels[-1], d)
        self.fea = EAM(cfg.face_channels, d)
        self.decodefeature_extract = down_res_stack(2 * cfg.face_channels, cfg.decoder_channels)
        self.feature_extract = down_res_stack(1, cfg.pose_channels)
        self.transformer = PromptTransformer(cfg)
        self.kp = nn.Linear(d, latent.pca_components)
        self.f0_model = JDCNet(cfg, signal.n_mels)
        self.prompt_mode: PromptMode = prompt_mode
        self.window, self.map_size = window, cfg.audio_channels
        self.pose_angles, self.pose_bins = cfg.pose_token_angles, latent.pose_bins

    def face_feature(self, source_logits: torch.Tensor, e0: torch.Tensor | None = None) -> torch.Tensor:
        """Face map of the source: keypoint logits (B, k, D, h, w) → (B, face_channels, s, s), s = audio_channels.

        Per-pixel Linear(k·D → F) (``face_shrink``), resized to the audio map when h ≠ s (never at the paper's
        sizes), then the feature EAM (``fea``, Sec. 3.2) driven by e0 (B, d); the identity when e0 is None.
        """
        b, k, depth, h, w = source_logits.shape
        face = self.face_shrink(source_logits.reshape(b, k * depth, h, w).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        if (h, w) != (self.map_size, self.map_size):
            face = F.interpolate(face, size=(self.map_size, self.map_size), mode="bilinear", align_corners=False)
        return self.fea(face, e0)

    def frame_tokens(self, speech: torch.Tensor, pose_image: torch.Tensor) -> torch.Tensor:
        """Encoder tokens of the window's frames: speech (B, W, steps, 29), pose image (B, W, 1, p, p) → (B, W, d)."""
        b, w = speech.shape[:2]
        speech_feature = self.audio_embedding(speech.flatten(0, 1).transpose(1, 2))     # (B·W, C_s, 1)
        if speech_feature.shape[-1] != 1:
            raise ValueError(f"speech windows of {speech.shape[2]} steps: a2et.speech_channels has "
                             f"{len(self.audio_embedding) // 2} stride-2 layers, which need 2^layers steps")
        pose_feature = pooled(self.feature_extract, pose_image.flatten(0, 1))            # (B·W, C_p)
        return self.encoder_fc1(torch.cat([pose_feature, speech_feature.squeeze(-1)], dim=1)).view(b, w, -1)

    def audio_tokens(self, mel: torch.Tensor, face: torch.Tensor, e0: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder queries of the window's frames: mel (B, W, n_mels), face map (B or 1, F, s, s) → (B, W, d).

        The window's mel is one image (B, 1, n_mels, W) for the audio encoder (AdaIN driven by e0) and the JDC
        F0 network; each frame's column of the output (C_a × n_mels) is convolved into an s × s audio map and
        joined with the face map.
        """
        b, w, n_mels = mel.shape
        image = mel.transpose(1, 2).unsqueeze(1)
        audio = self.audioencoder(image, self.f0_model.features(image), e0)             # (B, C_a, n_mels, W)
        frames = audio.permute(0, 3, 1, 2).reshape(b * w, 1, audio.shape[1], n_mels)
        audio_map = self.audio_embedding2(frames)                                         # (B·W, F, s, s)
        face = face.unsqueeze(1).expand(b, w, *face.shape[1:]).reshape(b * w, *face.shape[1:])
        return pooled(self.decodefeature_extract, torch.cat([audio_map, face], dim=1)).view(b, w, -1)

    def forward(self, speech: torch.Tensor, pose: torch.Tensor, pose_image: torch.Tensor, mel: torch.Tensor,
                face: torch.Tensor, prompts: torch.Tensor | None = None, e0: torch.Tensor | None = None
                ) -> torch.Tensor:
        """One window per row → PE_i (B, pca_components), the PCA coefficients of the centre frame's E_i.

        speech (B, W, steps, 29): speech-recogniser logits S per frame; pose (B, W, 6): yaw, pitch, roll (degrees),
        tx, ty, tz — the centre frame's make the pose token; pose_image (B, W, 1, p, p): the drawn head box;
        mel (B, W, n_mels); face (B or 1, F, s, s) from :meth:`face_feature`; prompts (B, P, d): e1…e_P from the
        emotion mapper (deep mode needs P ≥ the layer count); e0 (B, d): drives the audio encoder's AdaIN.
        """
        if speech.shape[1] != self.window:
            raise ValueError(f"A2ET takes {self.window}-frame windows (signal.window_frames): got {speech.shape[1]}")
        pose_token = self.hp_extractor(head_pose_features(pose[:, self.window // 2], self.pose_angles,
                                                          self.pose_bins)).unsqueeze(1)
        source = torch.cat([self.frame_tokens(speech, pose_image), pose_token], dim=1)
        queries = torch.cat([self.audio_tokens(mel, face, e0), pose_token], dim=1)
        deep = None
        if prompts is not None and self.prompt_mode != "none":
            source = torch.cat([source, prompts[:, :1]], dim=1)
            queries = torch.cat([queries, prompts[:, :1]], dim=1)
            if self.prompt_mode == "deep":
                layers = max(len(self.transformer.encoder.layers), len(self.transformer.decoder.layers))
                if prompts.shape[1] < layers:
                    raise ValueError(f"deep prompts: {prompts.shape[1]} prompt tokens for {layers} layers "
                                     "(adaptation.prompt_tokens must be at least a2et.encoder/decoder_layers)")
                deep = prompts
        positions = self.pos_enc(source.shape[1])
        memory = self.transformer.encoder(source + positions, deep)
        out = self.transformer.decoder(queries + positions, memory, deep)
        return self.kp(out[:, self.window // 2])
