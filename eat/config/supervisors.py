"""Sections of the supervisors the paper trains or scores with: the speech recogniser (DeepSpeech's offline
substitute), the lip-sync expert and Emotion-FAN (with its still clips)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from eat.config.base import Section


class SpeechRecognizerConfig(Section):
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


class SyncExpertConfig(Section):
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
    face_norm: Literal["none", "standardise"] = "none"  # none: Wav2Lip's [0, 1] pixels; standardise: each
                                                        # (frame, colour) channel of a window to zero mean, unit std

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


class EmotionStillsConfig(Section):
    """Still clips of new synthetic identities mixed into the training clips (eat/synth/stills.py): the embedded
    run's substitute for the FER+ faces Emotion-FAN's backbone is pre-trained on. 0 identities: none (real data)."""

    identities: int = Field(ge=0)           # identities, each with one still clip per emotion
    frames: int = Field(ge=1)               # stills per clip
    pretrain_steps: int = Field(ge=0)       # steps on the still clips alone before the mixed training


class EmotionClassifierConfig(Section):
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
