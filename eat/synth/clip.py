"""Render one synthetic clip: speech → visemes → 3D landmarks → frames, plus its ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from eat.synth import face_model as fm
from eat.synth import motion, render, speech, visemes
from eat.synth.identities import Identity, stable_rng

# Prosody of each emotion at level 3, relative to the speaker's neutral voice:
# (rate factor, pitch offset, pitch-range offset, volume factor) — the acoustic
# correlates of emotion reported by Scherer (2003) and Banse & Scherer (1996).
EMOTION_PROSODY: dict[str, tuple[float, int, int, float]] = {
    "angry": (1.10, 6, 25, 1.45),
    "contempt": (0.90, -5, -15, 0.9),
    "disgusted": (0.85, -8, 5, 1.0),
    "fear": (1.20, 15, 10, 0.9),
    "happy": (1.08, 12, 30, 1.2),
    "neutral": (1.0, 0, 0, 1.0),
    "sad": (0.78, -10, -25, 0.7),
    "surprised": (1.0, 20, 40, 1.25),
}
REFERENCE_HALF_WIDTH_MM = 70.0


@dataclass(frozen=True)
class ClipSpec:
    """Everything that determines one clip (with the seed)."""

    dataset: str
    clip_id: str
    identity: Identity
    emotion: str
    level: int
    sentence_id: int
    text: str
    split: str
    video: str                 # relative to the dataset root
    audio: str                 # relative to the dataset root; equal to video when muxed
    fps: float
    width: int
    height: int
    audio_rate: int
    face_half_width_px: float
    n_frames: int | None = None   # fixed clip length (LRW; at most, VoxCeleb2); None = the utterance's length
    word: str = ""                # LRW: the clip is centred on this word


@dataclass
class RenderedClip:
    frames: list[np.ndarray]
    samples: np.ndarray
    frame_table: pd.DataFrame
    phone_table: pd.DataFrame


def prosody_for(ident: Identity, emotion: str, level: int) -> speech.Prosody:
    rate, pitch, rng_, vol = EMOTION_PROSODY[emotion]
    k = fm.LEVEL_SCALE[level] if emotion != "neutral" else 0.0
    return speech.Prosody(
        rate_wpm=int(round(ident.rate_wpm * (1 + (rate - 1) * k))),
        pitch=int(np.clip(ident.pitch + pitch * k, 0, 99)),
        pitch_range=int(np.clip(50 + rng_ * k, 0, 100)),
        volume=int(np.clip(100 * (1 + (vol - 1) * k), 10, 200)),
    )


def _timed_audio(spec: ClipSpec, rng: np.random.Generator) -> tuple[speech.Utterance, int, float]:
    """Synthesise, pad and cut the speech; returns (utterance, n_frames, offset_s of clip start)."""
    utt = speech.synthesize(spec.text, spec.identity.voice, prosody_for(spec.identity, spec.emotion, spec.level))
    utt = utt.pad(float(rng.uniform(0.25, 0.45)), float(rng.uniform(0.3, 0.5))).resample(spec.audio_rate)
    offset = 0.0
    if spec.n_frames is None:
        n_frames = int(np.floor(utt.duration_s * spec.fps))
    elif not spec.word:            # a short utterance clip (VoxCeleb2): the first n_frames of the speech
        n_frames = min(spec.n_frames, int(np.floor(utt.duration_s * spec.fps)))
    else:
        n_frames = spec.n_frames
        word = next((w for w in utt.words if w.text.strip(".,").upper() == spec.word), None)
        if word is None:
            raise ValueError(f"{spec.clip_id}: word {spec.word!r} not found in the speech events of {spec.text!r}")
        offset = (word.start_s + word.end_s) / 2 - n_frames / spec.fps / 2
        if offset < 0:
            utt, offset = utt.pad(-offset, 0.0), 0.0
    return utt, n_frames, offset


def _cut_samples(utt: speech.Utterance, offset_s: float, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    start = int(round(offset_s * utt.sample_rate))
    out = np.zeros(n_samples, np.float32)
    piece = utt.samples[start:start + n_samples]
    out[:len(piece)] = piece
    # A faint room-noise floor, as in any recording: silence is never digital zero.
    return out + rng.normal(0, 3e-4, n_samples).astype(np.float32)


def render_clip(spec: ClipSpec, seed: int) -> RenderedClip:
    """Render frames, audio and per-frame ground truth of one clip (deterministic in spec and seed)."""
    rng = stable_rng(seed, "clip", spec.clip_id)
    ident = spec.identity
    utt, n_frames, offset = _timed_audio(spec, rng)
    n_samples = int(round(n_frames * spec.audio_rate / spec.fps))
    samples = _cut_samples(utt, offset, n_samples, rng)
    phones = [speech.Phone(p.symbol, p.start_s - offset, p.end_s - offset) for p in utt.phones
              if p.end_s > offset and p.start_s < offset + n_frames / spec.fps]
    mouth = visemes.mouth_track(phones, spec.fps, n_frames, coarticulation_s=0.025)

    level_scale = fm.LEVEL_SCALE[spec.level] if spec.emotion != "neutral" else 0.0
    aus = fm.emotion_action_units(spec.emotion, spec.level)
    jaw_bias = 0.35 * aus.get("AU26", 0.0) + 0.15 * aus.get("AU25", 0.0)
    loud = motion.loudness_envelope(samples, spec.audio_rate, spec.fps, n_frames)
    pose = motion.head_pose_track(rng, n_frames, spec.fps, spec.emotion, level_scale, loud)
    blink = motion.blink_track(rng, n_frames, spec.fps)

    # A centred pinhole camera; the head is moved (not the sensor) to put the face where the identity sits.
    cam = fm.Camera(focal=spec.face_half_width_px * 600.0 / REFERENCE_HALF_WIDTH_MM, cx=spec.width / 2,
                    cy=spec.height / 2)
    pose[:, 3] += (ident.placement[0] - 0.5) * spec.width * cam.distance / cam.focal
    pose[:, 4] += (ident.placement[1] - 0.5) * spec.height * cam.distance / cam.focal
    backdrop = render.background(ident.appearance, spec.width, spec.height)
    rest = fm.neutral_landmarks(ident.shape)
    cranium = fm.cranium_outline(ident.shape)

    frames, landmarks = [], np.zeros((n_frames, fm.N_LANDMARKS, 2), np.float32)
    for i in range(n_frames):
        frame_aus = dict(aus, AU43=max(aus.get("AU43", 0.0), float(blink[i])))
        pts = fm.apply_action_units(rest, frame_aus, ident.shape)
        aperture, width, rounding = (float(v) for v in mouth[i])
        pts = fm.apply_viseme(pts, min(1.2, aperture + jaw_bias), width, rounding, ident.shape)
        xy, _ = fm.project(np.concatenate([pts, cranium]), pose[i], cam)
        landmarks[i] = xy[:fm.N_LANDMARKS]
        frames.append(render.draw_face(backdrop, xy[:fm.N_LANDMARKS], xy[fm.N_LANDMARKS:], ident.appearance,
                                       float(pose[i, 0]), teeth_visible=0.8))

    frame_table = pd.DataFrame({
        "clip_id": spec.clip_id,
        "frame": np.arange(n_frames, dtype=np.int32),
        "landmarks": list(landmarks.reshape(n_frames, -1)),
        **{name: pose[:, k].astype(np.float32) for k, name in enumerate(("yaw", "pitch", "roll", "tx", "ty", "tz"))},
        "mouth_open_px": np.linalg.norm(landmarks[:, 66] - landmarks[:, 62], axis=1),
        "aperture": mouth[:, 0],
        "blink": blink.astype(np.float32),
    })
    phone_table = pd.DataFrame({
        "clip_id": spec.clip_id,
        "phone": [p.symbol for p in phones],
        "start_s": np.array([max(0.0, p.start_s) for p in phones], np.float32),
        "end_s": np.array([min(n_frames / spec.fps, p.end_s) for p in phones], np.float32),
    })
    return RenderedClip(frames, samples, frame_table, phone_table)
