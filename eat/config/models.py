"""Sections of the paper's models and their stages: the latent model (RePos-Net, keypoints), the PCA basis,
A2ET, the emotional adaptation (deep prompts, EDN, EAM) and its variants, evaluation and emotion control."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from eat.config.base import EMOTIONS, Section


class LatentConfig(Section):
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
    he_stage_blocks: list[int] = Field(min_length=4, max_length=4)   # bottlenecks per stage (official 3, 4, 6, 3)
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
        if min(self.he_stage_blocks) < 1:
            raise ValueError("he_stage_blocks: every stage of the estimator needs at least one bottleneck block")
        if self.pca_components > 3 * self.num_kp:
            raise ValueError("pca_components cannot exceed 3 × num_kp (the size of E)")
        return self


class LatentTrainConfig(Section):
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
    driving_roll: float = Field(default=0.0, ge=0, le=45)   # driving frame turned by up to ± this many ° (0 = off)
    affine_sigma: float = Field(ge=0)               # equivariance warp: random affine and TPS strengths
    tps_sigma: float = Field(ge=0)
    tps_points: int = Field(ge=2)
    vgg_weights: Literal["auto", "imagenet", "substitute"]   # auto: ImageNet file if present, else the substitute
    eval_frames_per_clip: int = Field(ge=1)         # held-out frames scored per clip
    eval_batch_size: int = Field(ge=1)


class PCAConfig(Section):
    """The ``fit_pca`` stage: which training videos the basis of E is fitted on (the paper: 2,500 videos)."""

    datasets: list[Literal["MEAD", "LRW", "VoxCeleb2"]] = Field(min_length=1)
    max_videos: int = Field(ge=0)     # 0 = every training clip of those datasets; else a seeded random subset


class A2ETConfig(Section):
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


class A2ETPhaseConfig(Section):
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


class A2ETTrainConfig(Section):
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


class AdaptationConfig(Section):
    """Emotional adaptation modules (Sec. 3.2): mapper, prompts, EDN, EAM (eat/models/adaptation.py)."""

    z_dim: int = Field(ge=1)
    mapper_hidden: int = Field(ge=1)
    mapper_shared_layers: int = Field(ge=1)
    mapper_unshared_layers: int = Field(ge=1)
    prompts: Literal["none", "shallow", "deep"]
    prompt_tokens: int = Field(ge=1)     # e1…e_n after e0 (official 6: one deep prompt per A2ET layer)


class AdaptationVariant(Section):
    """One trained variant of the emotional adaptation (the ablations of Tables 4, 5, 6 and 8, Fig. 5)."""

    prompts: Literal["none", "shallow", "deep"]       # Table 4
    edn: bool                                         # Table 5: + EDN
    eam: bool                                         # Table 5: + EAM
    edn_init: Literal["a2et", "random"]               # Table 8
    losses: list[Literal["perceptual", "latent", "sync", "l1"]] = Field(min_length=1)   # Table 6
    data_fraction: float = Field(gt=0, le=1)          # Fig. 5: share of the MEAD training clips
    curve: bool                                       # Fig. 5: score snapshots along training


class AdaptationTrainConfig(Section):
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


class EmotionControlConfig(Section):
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


class EvaluateConfig(Section):
    """The ``evaluate`` stages: how many test clips each protocol generates and scores (0 = all), and how many
    are scored at once.

    The paper: MEAD's fixed 100-clip subset (84 emotional level-3 + 16 neutral) of 985; LRW's 25k test clips.
    """

    mead_clips: int = Field(ge=0)
    lrw_clips: int = Field(ge=0)
    workers: int = Field(ge=0, le=64)   # clips scored in parallel (eat.parallel.map_clips): 0 = all CPUs, 1 = inline


class OptimConfig(Section):
    """Adam settings (Sec. 4): lr 1.5e-4 for A2ET, 2e-4 for the rest, betas (0.5, 0.999)."""

    lr_a2et: float = Field(gt=0)
    lr: float = Field(gt=0)
    betas: list[float] = Field(min_length=2, max_length=2)
