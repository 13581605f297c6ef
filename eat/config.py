"""Typed, validated run parameters loaded from ``params.yaml``.

``params.yaml`` is the single source of run parameters, one section per stage
(DVC tracks each stage's keys). This module turns it into frozen pydantic
objects: an unknown key or a value of the wrong type is a :class:`ConfigError`
that names the file and the dotted key, and so is a value that contradicts another
section (:data:`CROSS_SECTION_CHECKS`: what the models and stages assume of two
sections together). Profiles (``configs/*.yaml``) are partial overlays of the same
shape, merged on top with :func:`apply_profile`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

EMOTIONS: tuple[str, ...] = ("angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised")
"""MEAD's eight emotions, in the official EAT label order (ang, con, dis, fea, hap, neu, sad, sur)."""

# EAMM's MEAD test identities (Ji et al., SIGGRAPH 2022), used by EAT's evaluation (docs/paper_notes.md §6).
MEAD_TEST_IDENTITIES: tuple[str, ...] = ("M003", "M030", "W009", "W015")

A2ET_POSITIONS = 20
"""Rows of the sinusoid position table of A2ET and EDN (official ``PositionalEncoding(128, 20)``): at most this many
tokens, which bounds the window (W + 2 tokens in A2ET) and the prompts (P + 2 tokens in EDN)."""

LOGIT_RATE_HZ = 50
"""DeepSpeech 0.1.0 emits one logit vector per 20 ms (10 ms MFCC step, BiRNN stride 2); the ctc backend too."""

MIN_VGG_INPUT = 16
"""Smallest image side the VGG19 perceptual loss takes: it halves the image 4 times before relu5_1."""


X264Preset = Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"]
"""x264's speed presets: a faster one writes larger files at the same ``crf`` (quality)."""


class ConfigError(ValueError):
    """A parameter file is missing, unreadable, or has an invalid key or value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class FrameSize(_Section):
    width: int = Field(gt=15, le=4096)
    height: int = Field(gt=15, le=4096)

    @model_validator(mode="after")
    def _even(self) -> FrameSize:
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even (H.264 with yuv420p)")
        return self


class _RecordingConfig(_Section):
    """How a synthetic dataset is recorded: frame rate, sample rate, frame size, face size."""

    fps: float = Field(gt=0)
    audio_rate: int = Field(ge=8000)
    frame: FrameSize
    face_half_width_px: float = Field(gt=8)


class MeadSynthConfig(_RecordingConfig):
    """Miniature MEAD: per identity, neutral clips plus every emotion × level on shared sentences."""

    train_identities: list[str] = Field(min_length=1)
    test_identities: list[str] = Field(min_length=1)
    emotions: list[Literal[EMOTIONS]] = Field(min_length=1)  # type: ignore[valid-type]
    levels: list[int] = Field(min_length=1)
    neutral_sentences: int = Field(ge=1)
    sentences_per_level: int = Field(ge=1)

    @model_validator(mode="after")
    def _check(self) -> MeadSynthConfig:
        for name in self.train_identities + self.test_identities:
            if len(name) != 4 or name[0] not in "MW" or not name[1:].isdigit():
                raise ValueError(f"MEAD identity {name!r} must look like M0xx or W0xx")
        if set(self.train_identities) & set(self.test_identities):
            raise ValueError("an identity is both in train_identities and test_identities")
        if any(level not in (1, 2, 3) for level in self.levels):
            raise ValueError("levels must be among 1, 2, 3 (MEAD's intensities)")
        if self.sentences_per_level > self.neutral_sentences:
            raise ValueError("sentences_per_level cannot exceed neutral_sentences: emotional clips reuse the "
                             "neutral sentences so that every emotional clip has a neutral partner")
        return self


class LrwSynthConfig(_RecordingConfig):
    """Miniature LRW: word-centred 29-frame clips, 256², 25 fps, audio inside the mp4."""

    words: list[str] = Field(min_length=1)
    clips_per_split: dict[Literal["train", "val", "test"], int]
    identities: int = Field(ge=1)
    frames: int = Field(ge=5)


class VoxSynthConfig(_RecordingConfig):
    """Miniature VoxCeleb2: 224², 25 fps mp4 plus m4a per utterance."""

    identities: int = Field(ge=1)
    videos_per_identity: int = Field(ge=1)
    utterances_per_video: int = Field(ge=1)
    frames: int | None = Field(default=None, ge=11)   # clip length cap (many short clips); None = whole sentence


class SynthConfig(_Section):
    """The ``synth`` stage: the embedded synthetic MEAD/LRW/VoxCeleb2 miniature."""

    mead: MeadSynthConfig
    lrw: LrwSynthConfig
    voxceleb2: VoxSynthConfig
    workers: int = Field(ge=1, le=64)
    crf: int = Field(ge=0, le=51)
    preset: X264Preset


class DataConfig(_Section):
    """Where the raw datasets live. Point these at real downloads to run at paper scale."""

    mead_root: str        # an empty folder leaves the dataset out
    lrw_root: str
    voxceleb2_root: str
    transcripts: str      # optional parquet (clip_id, text); the synthetic ground truth has one


class RayConfig(_Section):
    """Where per-clip work runs: ``local`` starts Ray on this machine; ``ray://host:10001`` joins a cluster.

    The environment variable ``EAT_RAY_ADDRESS`` overrides ``address``.
    """

    address: str
    workers: int = Field(ge=0)   # CPUs to use on a local Ray; 0 = all


class IngestConfig(_Section):
    min_frames: int = Field(ge=1)            # shorter clips cannot fill an A2ET window
    max_av_mismatch_s: float = Field(ge=0)   # larger audio/video length differences are quarantined


class NormaliseConfig(_Section):
    """Target format is ``signal.fps`` / ``signal.audio_rate``; these are the checks and the encoding."""

    crf: int = Field(ge=0, le=51)
    preset: X264Preset
    silence_rms: float = Field(ge=0)         # audio quieter than this (full scale = 1) is "silent"
    clipped_fraction: float = Field(ge=0)    # more samples than this fraction at full scale is "clipped"


class CropAlignConfig(_Section):
    """Face crop and alignment (the official rule, docs/paper_notes.md §1): one box per clip or a smoothed track."""

    backend: Literal["mediapipe", "fan"]
    fan_weights: str                         # local FAN checkpoint for backend "fan" (see eat/weights.py)
    mode: Literal["first_frame", "smoothed"]
    size: int = Field(ge=32)                 # aligned frames are size × size (the paper: 256)
    scale: float = Field(gt=0)               # crop side = scale × face width (official: 2.1)
    smooth_s: float = Field(ge=0)            # window of the moving average in "smoothed" mode
    crf: int = Field(ge=0, le=51)
    min_detected_fraction: float = Field(ge=0, le=1)
    max_abs_yaw: float = Field(gt=0)         # faces turned further (profile views) are quarantined


class SignalConfig(_Section):
    """Common signal format after normalisation (docs/paper_notes.md §1): video, audio, mel, window."""

    fps: float = Field(gt=0)
    audio_rate: int = Field(ge=8000)
    image_size: int = Field(ge=32)
    n_mels: int = Field(ge=8)
    n_fft: int = Field(ge=64)
    hop_length: int = Field(ge=1)
    window_frames: int = Field(ge=1)   # 2w + 1 frames around frame i (A2ET window)

    @model_validator(mode="after")
    def _one_mel_per_frame(self) -> SignalConfig:
        if self.hop_length * self.fps != self.audio_rate:
            raise ValueError("hop_length must be audio_rate / fps so that one mel frame matches one video frame")
        if self.window_frames % 2 == 0:
            raise ValueError("window_frames must be odd (2w + 1)")
        return self


class LatentConfig(_Section):
    """3D keypoint model (OSFV / face-vid2vid) network sizes, after the official EAT configuration.

    ``configs/paper.yaml`` holds the official values (docs/paper_notes.md §2, §9);
    the default profile shrinks widths and depths for 2 CPU cores.
    """

    num_kp: int = Field(ge=1)                 # k canonical keypoints (official 15)
    feature_channel: int = Field(ge=1)        # C of the 3D appearance / keypoint volumes (official 32)
    reshape_depth: int = Field(ge=1)          # D of both 3D volumes (official 16)
    kp_block_expansion: int = Field(ge=1)     # keypoint detector hourglass (official 32 / 1024 / 5)
    kp_max_features: int = Field(ge=1)
    kp_num_blocks: int = Field(ge=1)
    kp_scale_factor: float = Field(gt=0, le=1)   # the detector sees the image downscaled (official 0.25)
    kp_temperature: float = Field(gt=0)       # softmax temperature of the keypoint heatmaps (official 0.1)
    he_block_expansion: int = Field(ge=1)     # head-pose & expression estimator (official 64 / 2048)
    he_max_features: int = Field(ge=4)
    gen_block_expansion: int = Field(ge=1)    # RePos-Net 2D encoder (official 64 / 512 / 2 / 6)
    gen_max_features: int = Field(ge=1)       # channels before the reshape = feature_channel × reshape_depth
    gen_down_blocks: int = Field(ge=1)
    gen_res_blocks: int = Field(ge=1)
    spade_hidden: int = Field(ge=1)           # hidden width of the SPADE decoder's norm MLPs (official 128)
    dense_block_expansion: int = Field(ge=1)  # dense motion 3D hourglass (official 32 / 1024 / 5, compress 4)
    dense_max_features: int = Field(ge=1)
    dense_num_blocks: int = Field(ge=1)
    dense_compress: int = Field(ge=1)
    dense_mask_kernel: int = Field(ge=1)     # the motion-mask conv3d (official 7)
    disc_scales: list[float] = Field(min_length=1)   # multi-scale patch discriminator (OSFV: [1], 32 / 512 / 4)
    disc_block_expansion: int = Field(ge=1)
    disc_max_features: int = Field(ge=1)
    disc_num_blocks: int = Field(ge=1)
    emotion_dim: int = Field(ge=1)            # e0 token width fed to the generator's 3D EAM slot (= a2et.d_model)
    pose_bins: int = Field(ge=2)              # yaw / pitch / roll bins of 3 degrees (official 66)
    pca_components: int = Field(ge=1)         # PCA of E (official 32)

    @model_validator(mode="after")
    def _check(self) -> LatentConfig:
        if self.gen_max_features != self.feature_channel * self.reshape_depth:
            raise ValueError("gen_max_features must equal feature_channel × reshape_depth (the 2D features "
                             "are reshaped into a (feature_channel, reshape_depth, H, W) volume)")
        if self.dense_mask_kernel % 2 == 0:
            raise ValueError("dense_mask_kernel must be odd (same-size 3D convolution)")
        if self.feature_channel < 8:
            raise ValueError("feature_channel must be at least 8 (the 3D EAM's hidden width is feature_channel / 8)")
        if self.pca_components > 3 * self.num_kp:
            raise ValueError("pca_components cannot exceed 3 × num_kp (the size of E)")
        return self


class LatentTrainConfig(_Section):
    """The ``train_latent`` stage (Sec. 3.1.1): losses, schedule, Ray Train scaling, held-out evaluation.

    Loss weights are OSFV's (vox-256 config): perceptual 10 per VGG19 layer at pyramid scales
    1, 1/2, 1/4, 1/8; GAN 1 + feature matching 10; equivariance 10; keypoint prior 10; head pose 20;
    deformation (expression) prior 5 in ``osfv`` mode only.
    """

    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    num_workers: int = Field(ge=1)            # Ray Train workers (data-parallel); GPU each where CUDA is present
    threads_per_worker: int = Field(ge=1)
    checkpoint_every: int = Field(ge=1)       # steps between Ray Train checkpoints (the resume point)
    log_every: int = Field(ge=1)
    bf16: bool                                # bfloat16 autocast (fp32 weights): ~1.4× faster steps on AMX CPUs
    lr_milestones: list[float] = Field(default_factory=list)   # fractions of steps where lr drops × 0.1
    lr_schedule: Literal["step", "cosine"] = "step"   # step: lr_milestones (OSFV); cosine: decay to 0 over the steps
    warmup_steps: int = Field(default=0, ge=0)        # linear lr warm-up from lr / warmup_steps
    lr_scale: float = Field(default=1.0, gt=0)        # × optim.lr (the paper's 2e-4) for this stage
    pyramid_scales: list[float] = Field(min_length=1)
    perceptual_weights: list[float] = Field(min_length=5, max_length=5)   # VGG19 relu1_1 … relu5_1
    gan_weight: float = Field(ge=0)
    feature_matching_weight: float = Field(ge=0)
    equivariance_weight: float = Field(ge=0)
    keypoint_prior_weight: float = Field(ge=0)
    keypoint_prior_distance: float = Field(gt=0)    # D_t: keypoints closer than this are pushed apart
    keypoint_prior_depth: float                     # z_t: target mean depth of the keypoints
    headpose_weight: float = Field(ge=0)
    headpose_labels: Literal["estimated", "groundtruth"] = "estimated"   # pose stage (PnP) / synthetic sidecars
    deformation_prior_weight: float = Field(ge=0)   # used in osfv mode, removed in enhanced mode (the paper)
    face_l1_weight: float = Field(ge=0)             # enhanced mode: L1 on the face region
    l1_weight: float = Field(default=0.0, ge=0)     # osfv mode: L1 on the whole frame (0 = OSFV's objective)
    face_margin: float = Field(ge=0)                # face mask = landmark hull grown by this fraction of its size
    flip_probability: float = Field(ge=0, le=1)     # OSFV augmentation: horizontal flip of a pair (0.5)
    color_jitter: list[float] = Field(min_length=4, max_length=4)   # brightness, contrast, saturation, hue (0.1 each)
    colour_strength: float = Field(default=0.0, ge=0, le=1)   # channel permutation + gain/offset (0 = OSFV's off)
    affine_sigma: float = Field(ge=0)               # equivariance warp: random affine and TPS strengths
    tps_sigma: float = Field(ge=0)
    tps_points: int = Field(ge=2)
    vgg_weights: Literal["auto", "imagenet", "substitute"]   # auto: ImageNet file if present, else the substitute
    eval_frames_per_clip: int = Field(ge=1)         # held-out frames scored per clip
    eval_batch_size: int = Field(ge=1)


class PCAConfig(_Section):
    """The ``fit_pca`` stage: which training videos the basis of E is fitted on (the paper: 2,500 videos)."""

    datasets: list[Literal["MEAD", "LRW", "VoxCeleb2"]] = Field(min_length=1)
    max_videos: int = Field(ge=0)     # 0 = every training clip of those datasets; else a seeded random subset


class A2ETConfig(_Section):
    """Audio-to-expression transformer sizes (Sec. 3.1.2, App. A) and its feature extractors (eat/models/a2et.py).

    ``configs/paper.yaml`` holds the official values (the official ``Audio2kpTransformerBBoxQDeepPrompt``);
    the default profile shrinks widths and depths for 2 CPU cores.
    """

    encoder_layers: int = Field(ge=1)
    decoder_layers: int = Field(ge=1)
    heads: int = Field(ge=1)
    ffn_dim: int = Field(ge=1)
    d_model: int = Field(ge=8)
    dropout: float = Field(ge=0, lt=1)                 # transformer layers (official 0.1)
    speech_channels: list[int] = Field(min_length=1)   # stride-2 Conv1d stack over the speech window (official
                                                       # 32, 32, 64, 64: 16 steps → 1); 2^len = speech_window
    pose_image_size: int = Field(ge=4)                 # side of the drawn head-box image, one channel (official 64)
    pose_channels: list[int] = Field(min_length=1)     # down-residual blocks over it (official 32, 64, 128, 128, 128)
    face_channels: int = Field(ge=8)                   # per-pixel Linear of the source keypoint logits (official 32);
                                                       # also the width of the audio map and of the feature EAM
    decoder_channels: list[int] = Field(min_length=1)  # down-residual blocks over [audio map, face map] (official
                                                       # 32, 48, 64, 96, 128); the last is d_model
    audio_channels: int = Field(ge=8)                  # audio encoder stem width = audio map side (official 64)
    audio_max_channels: int = Field(ge=8)              # (official 512)
    audio_down_blocks: int = Field(ge=1)               # frequency-halving blocks of the audio encoder (official 3)
    jdc_channels: list[int] = Field(min_length=4, max_length=4)   # JDC F0 network widths (official 64/128/192/256)
    jdc_lstm_hidden: int = Field(ge=1)                 # its BiLSTM width (official 256)
    phoneme_embedding_dim: int = Field(ge=0)           # the official A2ET's unused phoneme table (41 × 256); 0 omits it
    pose_token_angles: Literal["degrees", "official_bins"]   # head-pose token angles; official_bins reproduces the
                                                       # official code, which feeds the pose-bin expectation (0…65)

    @model_validator(mode="after")
    def _check(self) -> A2ETConfig:
        if self.d_model % self.heads:
            raise ValueError("d_model must be divisible by heads")
        if self.decoder_channels[-1] != self.d_model:
            raise ValueError("the last of decoder_channels must equal d_model (it is the decoder token width)")
        if 2 ** len(self.pose_channels) > self.pose_image_size:
            raise ValueError("pose_image_size must be at least 2^len(pose_channels) (each block halves it)")
        if 2 ** len(self.decoder_channels) > self.audio_channels:
            raise ValueError("audio_channels (the audio/face map side) must be at least 2^len(decoder_channels)")
        if any(c % 8 for c in (self.audio_channels, self.audio_max_channels)):
            raise ValueError("audio_channels and audio_max_channels must be multiples of 8 (GroupNorm of 8 groups)")
        if self.jdc_channels[-1] % 8:
            raise ValueError("the last of jdc_channels must be a multiple of 8 (GroupNorm of 8 groups on F0 features)")
        return self


class A2ETPhaseConfig(_Section):
    """One A2ET training phase: steps, batch and the loss weights of L = λ_lat L_lat + λ_sync L_sync + λ_rec L_rec.

    Official weights (docs/paper_notes.md §4): phase 1 pca 10, latent 10; phase 2 perceptual [10]×5, latent 25, pca 25,
    L1 1, sync 25. A phase with every rendering weight 0 never renders (the latent phase).
    """

    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)             # windows (latent phase) or runs of sync_expert.frames frames
    pca_weight: float = Field(ge=0)
    latent_weight: float = Field(ge=0)
    l1_weight: float = Field(ge=0)            # face-region L1
    perceptual_weights: list[float] = Field(min_length=5, max_length=5)   # per VGG19 layer
    sync_weight: float = Field(ge=0)

    @property
    def renders(self) -> bool:
        return self.l1_weight > 0 or self.sync_weight > 0 or any(w > 0 for w in self.perceptual_weights)


class A2ETTrainConfig(_Section):
    """The ``train_a2et`` stage (Sec. 3.1.2): two phases, Ray Train scaling, schedule and held-out evaluation."""

    latent: A2ETPhaseConfig                   # phase 1: L_lat alone
    full: A2ETPhaseConfig                     # phase 2: the full loss through the frozen RePos-Net
    num_workers: int = Field(ge=1)
    threads_per_worker: int = Field(ge=1)
    checkpoint_every: int = Field(ge=1)
    log_every: int = Field(ge=1)
    grad_clip: float = Field(gt=0)            # gradient-norm clipping (official 0.05)
    lr_milestones: list[float]                # fractions of a phase's steps where lr × 0.1 (MultiStepLR)
    pyramid_scales: list[float] = Field(min_length=1)
    face_margin: float = Field(ge=0)
    vgg_weights: Literal["auto", "imagenet", "substitute"]   # as latent_train.vgg_weights
    eval_clips: int = Field(ge=0)             # held-out MEAD clips generated and scored (0 = all)
    eval_batch_size: int = Field(ge=1)        # windows per A2ET forward pass when generating a clip


class AdaptationConfig(_Section):
    """Emotional adaptation modules (Sec. 3.2): mapper, prompts, EDN, EAM (eat/models/adaptation.py)."""

    z_dim: int = Field(ge=1)
    mapper_hidden: int = Field(ge=1)
    mapper_shared_layers: int = Field(ge=1)
    mapper_unshared_layers: int = Field(ge=1)
    prompts: Literal["none", "shallow", "deep"]
    prompt_tokens: int = Field(ge=1)     # e1…e_n after e0 (official 6: one deep prompt per A2ET layer)


class AdaptationVariant(_Section):
    """One trained variant of the emotional adaptation (the ablations of Tables 4, 5, 6 and 8, Fig. 5)."""

    prompts: Literal["none", "shallow", "deep"]       # Table 4
    edn: bool                                         # Table 5: + EDN
    eam: bool                                         # Table 5: + EAM
    edn_init: Literal["a2et", "random"]               # Table 8
    losses: list[Literal["perceptual", "latent", "sync", "l1"]] = Field(min_length=1)   # Table 6
    data_fraction: float = Field(gt=0, le=1)          # Fig. 5: share of the MEAD training clips
    curve: bool                                       # Fig. 5: score snapshots along training


class AdaptationTrainConfig(_Section):
    """The ``train_adaptation`` stage (Sec. 3.2, 3.3): only mapper, EDN and EAM train; official loss weights
    (docs/paper_notes.md §4): perceptual [10]×5, latent 100 (keypoints only), L1 10, sync 10."""

    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)             # runs of sync_expert.frames consecutive frames
    latent_weight: float = Field(ge=0)
    l1_weight: float = Field(ge=0)
    perceptual_weights: list[float] = Field(min_length=5, max_length=5)
    sync_weight: float = Field(ge=0)
    lr: float = Field(gt=0)                   # Adam (the paper: 2e-4 for everything but A2ET)
    num_workers: int = Field(ge=1)
    threads_per_worker: int = Field(ge=1)
    checkpoint_every: int = Field(ge=1)
    log_every: int = Field(ge=1)
    grad_clip: float = Field(gt=0)
    curve_points: int = Field(ge=2)           # Fig. 5: checkpoints along training scored on a fixed subset
    curve_clips: int = Field(ge=1)            # … of this many held-out clips


class EmotionControlConfig(_Section):
    """The ``emotion_control`` stage: Fig. 12's interpolation strip and the intensity response."""

    start: str                                # the strip goes from this emotion …
    end: str                                  # … to this one
    steps: int = Field(ge=2)                  # rows of the strip (α from 0 to 1)
    frames: int = Field(ge=1)                 # frames shown per row
    intensities: list[float] = Field(min_length=2)
    clips: int = Field(ge=1)                  # held-out clips averaged for the intensity response
    clip_frames: int = Field(ge=1)            # their first frames only (cost)

    @model_validator(mode="after")
    def _check(self) -> EmotionControlConfig:
        for name in (self.start, self.end):
            if name not in EMOTIONS:
                raise ValueError(f"unknown emotion {name!r}: expected one of {', '.join(EMOTIONS)}")
        if any(not 0 <= i <= 1 for i in self.intensities) or sorted(self.intensities) != self.intensities:
            raise ValueError("intensities must rise within [0, 1]")
        return self


class EvaluateConfig(_Section):
    """The ``evaluate`` stages: how many test clips each protocol generates and scores (0 = all), and how many
    are scored at once.

    The paper: MEAD's fixed 100-clip subset (84 emotional level-3 + 16 neutral) of 985; LRW's 25k test clips.
    """

    mead_clips: int = Field(ge=0)
    lrw_clips: int = Field(ge=0)
    workers: int = Field(ge=0, le=64)   # clips scored in parallel (eat.parallel.map_clips): 0 = all CPUs, 1 = inline


class OptimConfig(_Section):
    """Adam settings (Sec. 4): lr 1.5e-4 for A2ET, 2e-4 for the rest, betas (0.5, 0.999)."""

    lr_a2et: float = Field(gt=0)
    lr: float = Field(gt=0)
    betas: list[float] = Field(min_length=2, max_length=2)


class AudioFeaturesConfig(_Section):
    """The ``audio_features`` stage: mel, MFCC and speech features per clip (docs/paper_notes.md §1)."""

    n_mfcc: int = Field(ge=1, le=80)
    speech_backend: Literal["ctc", "deepspeech"]   # ctc: offline substitute; deepspeech: the paper's
    speech_window: int = Field(ge=2)               # 50 fps logit steps per video frame (official: 16)
    deepspeech_graph: str                          # DeepSpeech 0.1.0 output_graph.pb (deepspeech backend)
    silence_dbfs: float = Field(le=0)              # clip RMS below this (dB full scale) is quarantined
    max_clipped_fraction: float = Field(ge=0, le=1)  # more samples than this at full scale: quarantined
    workers: int = Field(ge=0, le=64)              # eat.parallel.map_clips: 0 = all CPUs (Ray), 1 = inline

    @model_validator(mode="after")
    def _even_window(self) -> AudioFeaturesConfig:
        if self.speech_window % 2:
            raise ValueError("speech_window must be even so that the window is centred on the video frame")
        return self


class SpeechRecognizerConfig(_Section):
    """The ``ctc`` backend's recogniser: log-mel at 50 fps → convolutions → BiGRU → 29 logits."""

    n_mels: int = Field(ge=8)
    win_length: int = Field(ge=1)        # analysis window in samples, centred on each 20 ms step
    n_fft: int = Field(ge=64)
    channels: int = Field(ge=8)
    conv_layers: int = Field(ge=1)
    kernel_size: int = Field(ge=1)
    rnn_hidden: int = Field(ge=8)
    rnn_layers: int = Field(ge=0)       # 0: convolutions only (receptive field conv_layers · (kernel_size − 1) + 1)
    dropout: float = Field(ge=0, lt=1)
    steps: int = Field(ge=1)             # optimiser steps (bounds the training time)
    batch_size: int = Field(ge=1)        # utterances per step, split over the workers
    lr: float = Field(gt=0)              # peak learning rate of the one-cycle schedule
    speed_perturb: list[float] = Field(min_length=1)   # resampling factors, one copy of the training data each
    num_workers: int = Field(ge=1)       # Ray Train data-parallel workers
    threads_per_worker: int = Field(ge=1)
    checkpoint_every: int = Field(ge=1)  # steps between Ray Train checkpoints (resume point after a kill)
    log_every: int = Field(ge=1)         # steps per row of train_log.csv

    @model_validator(mode="after")
    def _check(self) -> SpeechRecognizerConfig:
        if self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd (same-length convolutions)")
        if self.n_fft < self.win_length:
            raise ValueError("n_fft must be at least win_length")
        if any(not 0.5 <= f <= 2.0 for f in self.speed_perturb):
            raise ValueError("speed_perturb factors must lie in [0.5, 2]")
        if self.batch_size % self.num_workers:
            raise ValueError(f"batch_size {self.batch_size} must split evenly over num_workers {self.num_workers}")
        return self


class SyncExpertConfig(_Section):
    """Wav2Lip-style lip-sync expert for L_sync (Sec. 3.3; eat/sync/wav2lip_expert.py) and its training.

    Wav2Lip's expert sees 5 frames of the lower half of a 96² face and a 16-frame window of its
    80 fps mel; our mel has one frame per video frame (docs/paper_notes.md §1), so the same 0.2 s is
    ``mel_frames`` = ``frames`` = 5 mel frames. Out-of-sync training pairs displace the audio
    window by ``negative_min_shift`` … ``negative_max_shift`` frames (either sign).
    """

    frames: int = Field(ge=1)               # T consecutive video frames per window (Wav2Lip: 5)
    mel_frames: int = Field(ge=1)           # mel frames per window (= frames with our mel; Wav2Lip's 80 fps mel: 16)
    face_size: int = Field(ge=16)           # face crop side S; the expert sees its lower half, S/2 × S (official 96)
    base_channels: int = Field(ge=1)        # stage widths ×1, 2, 4, 8, 16; embedding 16 × base (official 32 → 512)
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)           # Wav2Lip: 64
    lr: float = Field(gt=0)                 # Adam (Wav2Lip: 1e-4)
    negative_min_shift: int = Field(ge=1)   # |audio displacement| of an out-of-sync pair, in frames
    negative_max_shift: int = Field(ge=1)
    checkpoint_every: int = Field(ge=1)
    log_every: int = Field(default=100, ge=1)   # steps per row of train_log.csv (model.pt leaves it out)
    objective: Literal["bce", "infonce"] = "bce"   # bce: Wav2Lip's; infonce: contrastive over the batch
    windows_per_clip: int = Field(default=8, ge=2)  # infonce: consecutive windows per clip in a batch
    logit_scale: float = Field(default=10.0, gt=0)  # infonce: cosine × this = logit

    @model_validator(mode="after")
    def _check(self) -> SyncExpertConfig:
        if self.face_size % 2:
            raise ValueError("face_size must be even (the expert sees the lower half of the face)")
        if self.negative_min_shift > self.negative_max_shift:
            raise ValueError("negative_min_shift cannot exceed negative_max_shift")
        if self.objective == "infonce" and self.batch_size % self.windows_per_clip:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of windows_per_clip "
                             f"({self.windows_per_clip}) for the infonce objective")
        return self


class EmotionStillsConfig(_Section):
    """Still clips of new synthetic identities mixed into the training clips (eat/synth/stills.py): the embedded
    run's substitute for the FER+ faces Emotion-FAN's backbone is pre-trained on. 0 identities: none (real data)."""

    identities: int = Field(ge=0)           # identities, each with one still clip per emotion
    frames: int = Field(ge=1)               # stills per clip
    pretrain_steps: int = Field(ge=0)       # steps on the still clips alone before the mixed training


class EmotionClassifierConfig(_Section):
    """Emotion-FAN (Meng et al., ICIP 2019): ResNet-18 frames + self/relation attention → 8 emotions (Acc_emo).

    eat/emotion/emotion_fan.py. Emotion-FAN's own values (configs/paper.yaml): 224² RGB crops in
    [0, 1], ResNet-18 widths 64…512, dropout 0.5 before the attention heads and 0.6 before the
    classifier, 3 frames per training clip, SGD lr 4e-3 momentum 0.9 weight decay 1e-4, lr × 0.2
    after 1/3 and 2/3 of training (StepLR 60 of 180 epochs), batch 48.
    """

    input_size: int = Field(ge=32)          # frames are resized to input_size² (Emotion-FAN: 224)
    base_width: int = Field(ge=1)           # ResNet-18 stage widths w, 2w, 4w, 8w (torchvision / Emotion-FAN: 64)
    attention_dropout: float = Field(ge=0, lt=1)    # before the α and β heads (0.5)
    classifier_dropout: float = Field(ge=0, lt=1)   # before the classifier (0.6)
    weights: Literal["auto", "pretrained", "scratch"]   # auto: the emotion_fan file when present and matching
    crop_jitter: float = Field(ge=0, lt=1)   # random crop: up to this share of the side smaller, shifted
    aspect_jitter: float = Field(ge=0, lt=1)  # crop's width:height in e^±this (face-shape augmentation)
    color_jitter: float = Field(ge=0, lt=1)  # brightness, contrast, saturation factors in 1 ± this
    train_frames: int = Field(ge=1)         # frames sampled per clip and step (Emotion-FAN: 3)
    stills: EmotionStillsConfig
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)           # clips per step (Emotion-FAN: 48)
    optimizer: Literal["sgd", "adamw"]      # sgd: Emotion-FAN's (fine-tuning a FER+ backbone); adamw: from scratch
    lr: float = Field(gt=0)
    momentum: float = Field(ge=0, lt=1)     # sgd only
    weight_decay: float = Field(ge=0)
    lr_milestones: list[float] = Field(default_factory=list)   # fractions of steps where lr × lr_gamma
    lr_gamma: float = Field(gt=0, le=1)
    checkpoint_every: int = Field(ge=1)
    log_every: int = Field(default=50, ge=1)    # steps per row of train_log.csv (model.pt leaves it out)


class Params(_Section):
    """Everything in ``params.yaml``."""

    seed: int
    data: DataConfig
    ray: RayConfig
    synth: SynthConfig
    ingest: IngestConfig
    normalise: NormaliseConfig
    crop_align: CropAlignConfig
    speech_recognizer: SpeechRecognizerConfig
    audio_features: AudioFeaturesConfig
    signal: SignalConfig
    latent: LatentConfig
    latent_train: LatentTrainConfig
    pca: PCAConfig
    a2et: A2ETConfig
    a2et_train: A2ETTrainConfig
    adaptation: AdaptationConfig
    adaptation_train: AdaptationTrainConfig
    adaptation_variants: dict[str, AdaptationVariant]
    adaptation_runs: list[str] = Field(min_length=1)   # the variants dvc.yaml trains (foreach)
    evaluate: EvaluateConfig
    emotion_control: EmotionControlConfig
    optim: OptimConfig
    sync_expert: SyncExpertConfig
    emotion_classifier: EmotionClassifierConfig


# ---------------------------------------------------------------------------------------------------------------
# Checks across sections: each returns one sentence per violation, naming every key involved and why they must
# agree. The models and stages rely on these; without the checks a contradiction surfaces only when a stage builds
# its model or features, often hours into `make repro`.


def speech_step_errors(signal: SignalConfig, recognizer: SpeechRecognizerConfig) -> list[str]:
    """The 50 fps speech-logit steps against the video frame (``signal``) and the ctc recogniser's window.

    Shared with :class:`eat.features.config.FeatureParams`, the audio stages' view of the file."""
    rate, hop = signal.audio_rate, signal.hop_length
    if rate % LOGIT_RATE_HZ or hop % (rate // LOGIT_RATE_HZ):
        return [f"signal.audio_rate / {LOGIT_RATE_HZ} ({rate} / {LOGIT_RATE_HZ}) must divide signal.hop_length "
                f"({hop}): the speech features need a whole number of {LOGIT_RATE_HZ} fps logit steps per video frame"]
    step, errors = rate // LOGIT_RATE_HZ, []
    if hop // step % 2:
        errors.append(f"signal.hop_length / (signal.audio_rate / {LOGIT_RATE_HZ}) = {hop // step} logit steps per "
                      "video frame must be even: each frame's audio_features.speech_window is centred between two "
                      "steps")
    if recognizer.win_length < step or (recognizer.win_length - step) % 2:
        errors.append(f"speech_recognizer.win_length ({recognizer.win_length}) must be at least signal.audio_rate / "
                      f"{LOGIT_RATE_HZ} = {step} samples and differ from it by an even number (centred 20 ms steps)")
    return errors


def _speech_steps(p: Params) -> list[str]:
    return speech_step_errors(p.signal, p.speech_recognizer)


def _adaptation_runs(p: Params) -> list[str]:
    unknown = [r for r in p.adaptation_runs if r not in p.adaptation_variants]
    return [f"adaptation_runs names {unknown}, not in adaptation_variants ({', '.join(p.adaptation_variants)})"
            ] if unknown else []


def _prompts(p: Params) -> list[str]:
    """The prompts of the variants that ``adaptation_runs`` trains: deep ones give each A2ET encoder and decoder layer
    its own prompt (eat/models/a2et.py); EDN reads all of them beside two tokens of its own."""
    runs = {r: p.adaptation_variants[r] for r in p.adaptation_runs if r in p.adaptation_variants}
    deep = [r for r, v in runs.items() if v.prompts == "deep"]
    tokens, errors = p.adaptation.prompt_tokens, []
    if deep and tokens < max(p.a2et.encoder_layers, p.a2et.decoder_layers):
        errors.append(f"adaptation.prompt_tokens ({tokens}) must be at least a2et.encoder_layers "
                      f"({p.a2et.encoder_layers}) and a2et.decoder_layers ({p.a2et.decoder_layers}): the "
                      f"adaptation_runs {', '.join(deep)} have deep prompts (adaptation_variants.<run>.prompts), "
                      "one per A2ET layer")
    if any(v.edn for v in runs.values()) and tokens + 2 > A2ET_POSITIONS:
        errors.append(f"adaptation.prompt_tokens ({tokens}) + 2 exceeds the {A2ET_POSITIONS} positions of EDN, "
                      "which has A2ET's encoder and position table (a face token, e0 and the prompts)")
    return errors


def _a2et_inputs(p: Params) -> list[str]:
    """What A2ET's input layers (eat/models/a2et.py, jdc.py) take of the signal and the speech features."""
    s, a, errors = p.signal, p.a2et, []
    if s.window_frames + 2 > A2ET_POSITIONS:
        errors.append(f"signal.window_frames ({s.window_frames}) + 2 exceeds the {A2ET_POSITIONS} positions of A2ET "
                      "(a2et): a window's frames, the pose token and the prompt token")
    if s.n_mels % 2 ** a.audio_down_blocks or s.n_mels < a.audio_channels:
        errors.append(f"signal.n_mels ({s.n_mels}) must be a multiple of 2^a2et.audio_down_blocks "
                      f"({2 ** a.audio_down_blocks}) and at least a2et.audio_channels ({a.audio_channels}): A2ET's "
                      "audio encoder halves the mel axis per block and convolves it into a square audio map")
    if s.n_mels % 8 or s.n_mels < 32:
        errors.append(f"signal.n_mels ({s.n_mels}) must be a multiple of 8 and at least 32: A2ET's JDC F0 network "
                      "(a2et.jdc_channels) pools the mel axis 8×")
    if p.audio_features.speech_window > 2 ** len(a.speech_channels):
        errors.append(f"audio_features.speech_window ({p.audio_features.speech_window}) exceeds 2^len(a2et."
                      f"speech_channels) = {2 ** len(a.speech_channels)}: each stride-2 layer halves the window, "
                      "which must end as one step per frame")
    return errors


def _emotion_width(p: Params) -> list[str]:
    if p.latent.emotion_dim == p.a2et.d_model:
        return []
    return [f"latent.emotion_dim ({p.latent.emotion_dim}) must equal a2et.d_model ({p.a2et.d_model}): the emotion "
            "mapper's e0 (a2et.d_model wide) drives RePos-Net's 3D EAM, built latent.emotion_dim wide"]


def _sync_windows(p: Params) -> list[str]:
    cfg = p.sync_expert
    if cfg.mel_frames == cfg.frames:
        return []
    return [f"sync_expert.mel_frames ({cfg.mel_frames}) must equal sync_expert.frames ({cfg.frames}): the mel has "
            "one frame per video frame (signal.hop_length = signal.audio_rate / signal.fps), and L_sync "
            "(a2et_train, adaptation_train) gives the expert the mel of the sync_expert.frames frames it renders"]


def _perceptual_scales(p: Params) -> list[str]:
    size = p.signal.image_size
    return [f"{key}.pyramid_scales: the smallest scale ({min(scales):g}) gives {size * min(scales):g} px images at "
            f"signal.image_size ({size}); VGG19 needs at least {MIN_VGG_INPUT} px (it pools 16×)"
            for key, scales in (("latent_train", p.latent_train.pyramid_scales),
                                ("a2et_train", p.a2et_train.pyramid_scales))   # A2ET's full phase and the adaptation
            if size * min(scales) < MIN_VGG_INPUT]


CROSS_SECTION_CHECKS = (_adaptation_runs, _prompts, _a2et_inputs, _emotion_width, _sync_windows, _perceptual_scales,
                        _speech_steps)
"""Each takes validated :class:`Params` and returns its violations; :func:`parse_params` runs them all."""


def _format_errors(path: Path | str, err: ValidationError) -> str:
    lines = [f"{path}: invalid parameters"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (remove it or check its spelling)")
        else:
            lines.append(f"  {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def read_yaml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: parameter file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def parse_params(data: dict[str, Any], source: Path | str = "params.yaml") -> Params:
    """Validate every section, then :data:`CROSS_SECTION_CHECKS`; a :class:`ConfigError` lists every violation."""
    try:
        params = Params.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None
    errors = [error for check in CROSS_SECTION_CHECKS for error in check(params)]
    if errors:
        raise ConfigError("\n".join([f"{source}: sections disagree", *(f"  {e}" for e in errors)]))
    return params


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate a params file; raises :class:`ConfigError` naming the bad key."""
    return parse_params(read_yaml(path), path)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any], _prefix: str = "") -> dict[str, Any]:
    """Return ``base`` with ``overlay`` merged in; an overlay key absent from base is an error."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        dotted = f"{_prefix}{key}"
        if key not in out:
            raise ConfigError(f"profile key {dotted} does not exist in params.yaml")
        if isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = deep_merge(out[key], value, f"{dotted}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(overlay: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``: the keys ``dvc exp run -S`` takes."""
    flat: dict[str, Any] = {}
    for key, value in overlay.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def write_yaml_atomic(path: Path | str, data: dict[str, Any]) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False, default_flow_style=None, width=100)
    os.replace(tmp, path)


def apply_profile(profile: Path | str, params: Path | str = "params.yaml") -> Params:
    """Merge a profile overlay into ``params`` (validated first, then written atomically)."""
    merged = deep_merge(read_yaml(params), read_yaml(profile))
    validated = parse_params(merged, f"{params} + {profile}")
    write_yaml_atomic(params, merged)
    return validated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eat.config", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="validate params.yaml").add_argument("--params", default="params.yaml")
    apply = sub.add_parser("apply", help="merge a profile (configs/NAME.yaml) into params.yaml")
    apply.add_argument("profile")
    apply.add_argument("--params", default="params.yaml")
    over = sub.add_parser("overrides", help="print a profile as `-S key=value` arguments for dvc exp run")
    over.add_argument("profile")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "check":
            load_params(args.params)
        elif args.cmd == "apply":
            apply_profile(args.profile, args.params)
        else:
            for key, value in flatten(read_yaml(args.profile)).items():
                print(f"-S '{key}={json.dumps(value)}'", end=" ")
            print()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
