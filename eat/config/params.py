"""All of ``params.yaml`` (:class:`Params`, one field per section), the checks across sections, and reading,
validating and merging parameter files.

A value of the wrong type or an unknown key is a :class:`~eat.config.base.ConfigError` naming the file and the
dotted key; so is a value that contradicts another section (:data:`CROSS_SECTION_CHECKS`). Profiles
(``configs/*.yaml``) are partial overlays of the same shape, merged on top with :func:`apply_profile`.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from eat.config.base import A2ET_POSITIONS, LOGIT_RATE_HZ, MIN_VGG_INPUT, ConfigError, Section
from eat.config.data import (
    AudioFeaturesConfig,
    CropAlignConfig,
    DataConfig,
    IngestConfig,
    NormaliseConfig,
    RayConfig,
    SignalConfig,
    SynthConfig,
)
from eat.config.models import (
    A2ETConfig,
    A2ETTrainConfig,
    AdaptationConfig,
    AdaptationTrainConfig,
    AdaptationVariant,
    EmotionControlConfig,
    EvaluateConfig,
    LatentConfig,
    LatentTrainConfig,
    OptimConfig,
    PCAConfig,
)
from eat.config.supervisors import EmotionClassifierConfig, SpeechRecognizerConfig, SyncExpertConfig


class Params(Section):
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


def format_errors(path: Path | str, err: ValidationError) -> str:
    """A pydantic validation error as one line per bad key of file ``path`` (shared with the audio stages' view)."""
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
        raise ConfigError(format_errors(source, err)) from None
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
