"""Still clips of many synthetic identities: extra training faces for Emotion-FAN on the embedded data.

Emotion-FAN does not learn facial expression from its video set alone: its ResNet-18 comes pre-trained on FER+
(tens of thousands of faces). The embedded MEAD has 40 training identities, and a classifier trained on them reads
a new face at rest as an expression (docs/probes/emotion_fan). This module is the in-pipeline substitute for that
face set: ``emotion_classifier.stills.identities`` new identities (names no split uses), each showing every
emotion once as a "still clip" of ``frames`` stills at one MEAD intensity, each still with its own mouth shape,
blink and head pose within the clips' ranges. The stage mixes them into the MEAD training clips.

Each still is drawn by the synth's renderer on a MEAD frame (:func:`~eat.synth.render.draw_face`), cropped by
crop_align's rule (:func:`~eat.preprocess.crop_geometry.crop_box` on the landmarks of the identity's rest pose at
that emotion, as crop_align keeps the first frame's box), resized to the aligned frames' ``signal.image_size`` and
cut to the classifier's face box as it judges generated videos (:func:`eat.emotion.train.judged_face_crops`).
Ground-truth landmarks stand in for the detector's: the box differs from crop_align's by a few pixels, within the
classifier's crop jitter. Deterministic in (seed, identity name).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from eat.config import EMOTIONS, Params
from eat.emotion.train import EmotionClip, judged_face_crops
from eat.parallel import map_clips
from eat.preprocess.crop_geometry import crop, crop_box
from eat.synth import face_model as fm
from eat.synth import render
from eat.synth.clip import REFERENCE_HALF_WIDTH_MM
from eat.synth.identities import Identity, make_identity, stable_rng
from eat.synth.motion import AMPLITUDE, EMOTION_POSTURE

POSE_SPREAD = 0.6          # head pose of a still: the emotion's posture ± this share of the clips' amplitudes
BLINK_SHARE = 0.1          # stills caught in a blink (lids closed by a uniform amount)
CLOSED_MOUTH_SHARE = 0.25  # stills with the lips at rest, the others mid-speech (aperture, width, rounding uniform)


@dataclass(frozen=True)
class StillSettings:
    """What a still depends on besides its identity: the MEAD frame, crop_align's crop and the classifier's sizes."""

    seed: int
    width: int
    height: int
    face_half_width_px: float
    levels: tuple[int, ...]
    crop_scale: float
    crop_size: int
    image_size: int
    input_size: int
    frames: int

    @classmethod
    def of(cls, params: Params) -> StillSettings:
        m = params.synth.mead
        return cls(params.seed, m.frame.width, m.frame.height, m.face_half_width_px, tuple(m.levels),
                   params.crop_align.scale, params.crop_align.size, params.signal.image_size,
                   params.emotion_classifier.input_size, params.emotion_classifier.stills.frames)


def still_identity_names(count: int) -> list[str]:
    """``count`` identity names, alternately male and female (``MS0000``, ``WS0001`` …), unused by the splits."""
    return [f"{'W' if k % 2 else 'M'}S{k:04d}" for k in range(count)]


def _still(ident: Identity, emotion: str, level: int, rng: np.random.Generator, s: StillSettings,
           backdrop: np.ndarray) -> np.ndarray:
    """One still (input_size, input_size, 3) uint8 RGB of ``ident`` at ``emotion`` / ``level``, drawn on the
    identity's ``backdrop`` (:func:`~eat.synth.render.background`; drawing copies it)."""
    level_scale = fm.LEVEL_SCALE[level] if emotion != "neutral" else 0.0
    aus = fm.emotion_action_units(emotion, level)
    cam = fm.Camera(focal=s.face_half_width_px * 600.0 / REFERENCE_HALF_WIDTH_MM, cx=s.width / 2, cy=s.height / 2)
    posture = np.zeros(6)
    bias = EMOTION_POSTURE[emotion]
    posture[0:3], posture[5] = np.array(bias[:3]) * level_scale, bias[3] * level_scale
    posture[3] = (ident.placement[0] - 0.5) * s.width * cam.distance / cam.focal
    posture[4] = (ident.placement[1] - 0.5) * s.height * cam.distance / cam.focal
    pose = posture + AMPLITUDE * rng.uniform(-POSE_SPREAD, POSE_SPREAD, 6)
    rest, cranium = fm.neutral_landmarks(ident.shape), fm.cranium_outline(ident.shape)
    box = crop_box(fm.project(fm.apply_action_units(rest, aus, ident.shape), posture, cam)[0], s.crop_scale)
    blink = float(rng.uniform(0, 1)) if rng.random() < BLINK_SHARE else 0.0
    jaw_bias = 0.35 * aus.get("AU26", 0.0) + 0.15 * aus.get("AU25", 0.0)
    if rng.random() < CLOSED_MOUTH_SHARE:
        aperture, width, rounding = 0.0, 0.5, 0.0
    else:
        aperture, width, rounding = rng.uniform(0.05, 0.9), rng.uniform(0.2, 0.9), rng.uniform(0.0, 0.7)
    pts = fm.apply_action_units(rest, dict(aus, AU43=max(aus.get("AU43", 0.0), blink)), ident.shape)
    pts = fm.apply_viseme(pts, min(1.2, aperture + jaw_bias), width, rounding, ident.shape)
    xy, _ = fm.project(np.concatenate([pts, cranium]), pose, cam)
    frame = render.draw_face(backdrop, xy[:fm.N_LANDMARKS],
                             xy[fm.N_LANDMARKS:], ident.appearance, float(pose[0]), teeth_visible=0.8)
    aligned = cv2.resize(crop(frame, box, s.crop_size), (s.image_size, s.image_size), interpolation=cv2.INTER_AREA)
    return judged_face_crops(aligned[None], s.input_size)[0]


def identity_still_clips(name: str, s: StillSettings) -> list[EmotionClip]:
    """The 8 still clips of identity ``name``, one per emotion in EMOTIONS order (neutral at level 1, as MEAD)."""
    ident = make_identity(s.seed, name, female=name.startswith("W"), centred=False)
    rng = stable_rng(s.seed, "still", name)
    backdrop = render.background(ident.appearance, s.width, s.height)   # two thirds of a still's time: drawn once
    clips = []
    for label, emotion in enumerate(EMOTIONS):
        level = 1 if emotion == "neutral" else int(rng.choice(s.levels))
        frames = np.stack([_still(ident, emotion, level, rng, s, backdrop) for _ in range(s.frames)])
        clips.append(EmotionClip(f"still__{name}__{emotion}__level_{level}", label, frames))
    return clips


def still_clips(params: Params) -> list[EmotionClip]:
    """Every identity's still clips (``emotion_classifier.stills``), rendered on the stage's Ray workers."""
    names = still_identity_names(params.emotion_classifier.stills.identities)
    settings = StillSettings.of(params)
    outcomes = map_clips(lambda name: identity_still_clips(name, settings), names, desc="render still clips",
                         workers=params.ray.workers, address=params.ray.address)
    failed = [f"{o.item}: {o.error}" for o in outcomes if o.error]
    if failed:
        raise RuntimeError(f"rendering still clips failed for {len(failed)} identities: {failed[:3]}")
    return [clip for o in outcomes for clip in o.value]
