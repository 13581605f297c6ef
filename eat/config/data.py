"""Sections of the data stages: the embedded dataset (``synth``), where data lives, Ray, preprocessing
(``ingest``, ``normalise``, ``crop_align``), the common signal format and the audio features."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from eat.config.base import EMOTIONS, Section, X264Preset


class FrameSize(Section):
    width: int = Field(gt=15, le=4096)
    height: int = Field(gt=15, le=4096)

    @model_validator(mode="after")
    def _even(self) -> FrameSize:
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even (H.264 with yuv420p)")
        return self


class _RecordingConfig(Section):
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


class SynthConfig(Section):
    """The ``synth`` stage: the embedded synthetic MEAD/LRW/VoxCeleb2 miniature."""

    mead: MeadSynthConfig
    lrw: LrwSynthConfig
    voxceleb2: VoxSynthConfig
    workers: int = Field(ge=1, le=64)
    crf: int = Field(ge=0, le=51)
    preset: X264Preset


class DataConfig(Section):
    """Where the raw datasets live. Point these at real downloads to run at paper scale."""

    mead_root: str        # an empty folder leaves the dataset out
    lrw_root: str
    voxceleb2_root: str
    transcripts: str      # optional parquet (clip_id, text); the synthetic ground truth has one


class RayConfig(Section):
    """Where per-clip work runs: ``local`` starts Ray on this machine; ``ray://host:10001`` joins a cluster.

    The environment variable ``EAT_RAY_ADDRESS`` overrides ``address``.
    """

    address: str
    workers: int = Field(ge=0)   # CPUs to use on a local Ray; 0 = all


class IngestConfig(Section):
    min_frames: int = Field(ge=1)            # shorter clips cannot fill an A2ET window
    max_av_mismatch_s: float = Field(ge=0)   # larger audio/video length differences are quarantined


class NormaliseConfig(Section):
    """Target format is ``signal.fps`` / ``signal.audio_rate``; these are the checks and the encoding."""

    crf: int = Field(ge=0, le=51)
    preset: X264Preset
    silence_rms: float = Field(ge=0)         # audio quieter than this (full scale = 1) is "silent"
    clipped_fraction: float = Field(ge=0)    # more samples than this fraction at full scale is "clipped"


class CropAlignConfig(Section):
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


class SignalConfig(Section):
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


class AudioFeaturesConfig(Section):
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
