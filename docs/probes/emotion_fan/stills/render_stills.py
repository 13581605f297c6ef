"""Probe data: still MEAD-style faces of many synthetic identities, labelled with their emotion, as the classifier
sees them (aligned crop at signal.image_size, face box at input_size).

    python docs/probes/emotion_fan/stills/render_stills.py --identities 400 --frames 4 --out /tmp/stills.npz

A "still clip" per identity and emotion: ``--frames`` stills of a new identity (make_identity with a name no split
uses) at one emotion and level of MEAD's plan, each with a random mouth shape, blink and head pose of the clips'
ranges, drawn by the synth's renderer on a MEAD frame; the crop box is
crop_align's rule on the identity's first-frame landmarks (ground truth, not detected), then the 256² crop, the
area-downscale to 64² and the judge's face box at 96² (eat.emotion.train.judged_face_crops).
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from eat.config import EMOTIONS, load_params
from eat.emotion.train import judged_face_crops
from eat.preprocess.crop_geometry import crop, crop_box
from eat.synth import face_model as fm
from eat.synth import render
from eat.synth.clip import REFERENCE_HALF_WIDTH_MM
from eat.synth.identities import make_identity, stable_rng
from eat.synth.motion import AMPLITUDE, EMOTION_POSTURE


def still(ident, emotion: str, level: int, rng: np.random.Generator, m, crop_cfg, image_size: int, input_size: int):
    level_scale = fm.LEVEL_SCALE[level] if emotion != "neutral" else 0.0
    aus = fm.emotion_action_units(emotion, level)
    cam = fm.Camera(focal=m.face_half_width_px * 600.0 / REFERENCE_HALF_WIDTH_MM, cx=m.frame.width / 2,
                    cy=m.frame.height / 2)
    posture = np.zeros(6)
    bias = EMOTION_POSTURE[emotion]
    posture[0:3] = np.array(bias[:3]) * level_scale
    posture[5] = bias[3] * level_scale
    posture[3] = (ident.placement[0] - 0.5) * m.frame.width * cam.distance / cam.focal
    posture[4] = (ident.placement[1] - 0.5) * m.frame.height * cam.distance / cam.focal
    pose = posture + AMPLITUDE * rng.uniform(-0.6, 0.6, 6)
    rest, cranium = fm.neutral_landmarks(ident.shape), fm.cranium_outline(ident.shape)
    first = fm.project(fm.apply_action_units(rest, aus, ident.shape), posture, cam)[0]
    box = crop_box(first, crop_cfg.scale)
    blink = float(rng.uniform(0, 1)) if rng.random() < 0.1 else 0.0
    frame_aus = dict(aus, AU43=max(aus.get("AU43", 0.0), blink))
    jaw_bias = 0.35 * aus.get("AU26", 0.0) + 0.15 * aus.get("AU25", 0.0)
    if rng.random() < 0.25:
        aperture, width, rounding = 0.0, 0.5, 0.0
    else:
        aperture, width, rounding = rng.uniform(0.05, 0.9), rng.uniform(0.2, 0.9), rng.uniform(0.0, 0.7)
    pts = fm.apply_viseme(fm.apply_action_units(rest, frame_aus, ident.shape), min(1.2, aperture + jaw_bias),
                          width, rounding, ident.shape)
    xy, _ = fm.project(np.concatenate([pts, cranium]), pose, cam)
    frame = render.draw_face(render.background(ident.appearance, m.frame.width, m.frame.height), xy[:fm.N_LANDMARKS],
                             xy[fm.N_LANDMARKS:], ident.appearance, float(pose[0]), teeth_visible=0.8)
    face = crop(frame, box, crop_cfg.size)
    small = cv2.resize(face, (image_size, image_size), interpolation=cv2.INTER_AREA)
    return judged_face_crops(small[None], input_size)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--identities", type=int, default=400)
    parser.add_argument("--frames", type=int, default=4, help="stills per identity and emotion (one still clip)")
    parser.add_argument("--first", type=int, default=0, help="index of the first identity (to render in parts)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    params = load_params(args.params)
    m, levels = params.synth.mead, params.synth.mead.levels
    images, labels, idents = [], [], []
    start = time.perf_counter()
    for k in range(args.first, args.first + args.identities):
        name = f"{'W' if k % 2 else 'M'}S{k:04d}"
        ident = make_identity(params.seed, name, female=k % 2 == 1, centred=False)
        rng = stable_rng(params.seed, "still", name)
        for e, emotion in enumerate(EMOTIONS):
            level = 1 if emotion == "neutral" else int(rng.choice(levels))
            images.append(np.stack([still(ident, emotion, level, rng, m, params.crop_align, params.signal.image_size,
                                          params.emotion_classifier.input_size) for _ in range(args.frames)]))
            labels.append(e)
            idents.append(k)
    np.savez(args.out, images=np.stack(images), labels=np.array(labels), identities=np.array(idents))
    print(f"{len(images)} still clips in {time.perf_counter() - start:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
