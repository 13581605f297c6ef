"""Draw one video frame of a synthetic talking face from its projected landmarks.

The face is painted back to front with anti-aliased OpenCV polygons (sub-pixel
precision): background, hair behind the head, neck and shoulders, ears, the
skin with ellipsoid shading, nose shadow and nostrils, eyes (sclera, iris,
pupil, lids), brows, lips with mouth interior and teeth, then the fringe.
Every feature is drawn *from the landmarks*, so the ground-truth landmarks lie
on the drawn face by construction. The result looks like a simple CG portrait,
realistic enough for face detectors and landmark models to find.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from eat.synth.face_model import EYE_L, EYE_R, LIPS_INNER, LIPS_OUTER

_SHIFT = 4  # fixed-point bits for sub-pixel polygon vertices
_SKIN_TONES = [(233, 196, 170), (224, 172, 140), (198, 145, 110), (160, 108, 76), (120, 80, 56), (243, 210, 188)]
_HAIR = [(30, 24, 20), (70, 45, 28), (120, 85, 50), (190, 150, 95), (140, 60, 30), (95, 95, 95)]
_IRIS = [(70, 45, 30), (60, 90, 130), (80, 110, 70), (40, 30, 25)]


@dataclass(frozen=True)
class Appearance:
    """Identity colours (RGB) and styles; drawn per identity by :func:`sample_appearance`."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    lips: tuple[int, int, int]
    clothes: tuple[int, int, int]
    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    hair_style: str   # "short", "long", "bald", "bun"
    light: tuple[float, float, float]


def sample_appearance(rng: np.random.Generator, female: bool) -> Appearance:
    """Colours and styles of one identity, varied as widely as a face detector still accepts.

    Skin mixes two of the palette's tones at a random ratio; hair is a palette colour with a random
    gain (sometimes a dyed colour); clothes, lips' tint and the backdrop are free colours. Many
    identities then cover the colour space instead of a handful of palettes, which is what lets a
    renderer trained on them generalise to an unseen face.
    """
    a, b = (np.array(_SKIN_TONES[i], float) for i in rng.integers(len(_SKIN_TONES), size=2))
    skin = (a + (b - a) * rng.uniform()) * rng.uniform(0.92, 1.06)
    lips = skin * np.array([0.82, 0.55, 0.55]) + (np.array([40, 0, 10]) * rng.uniform(0.5, 1.5) if female else 0)
    hair = np.array(_HAIR[rng.integers(len(_HAIR))], float) * rng.uniform(0.7, 1.35)
    if rng.uniform() < 0.15:
        hair = rng.uniform(20, 220, 3)
    styles = ["long", "bun", "short"] if female else ["short", "short", "bald"]
    bg_a = rng.integers(30, 230, 3)
    bg_b = np.clip(bg_a + rng.integers(-80, 80, 3), 0, 255)
    light = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.6, -0.2), 0.8])
    return Appearance(
        skin=tuple(int(c) for c in np.clip(skin, 0, 255)),
        hair=tuple(int(c) for c in np.clip(hair, 0, 255)),
        iris=_IRIS[rng.integers(len(_IRIS))],
        lips=tuple(int(c) for c in np.clip(lips, 0, 255)),
        clothes=tuple(int(c) for c in rng.integers(20, 235, 3)),
        background=(tuple(int(c) for c in bg_a), tuple(int(c) for c in bg_b)),
        hair_style=styles[rng.integers(len(styles))],
        light=tuple(float(v) for v in light / np.linalg.norm(light)),
    )


def background(app: Appearance, width: int, height: int) -> np.ndarray:
    """Static (H, W, 3) uint8 backdrop: a diagonal two-colour gradient with a soft vignette."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xx / width * 0.6 + yy / height * 0.4)[..., None]
    a, b = (np.array(c, np.float32) for c in app.background)
    img = a * (1 - t) + b * t
    r = np.hypot((xx - width / 2) / width, (yy - height / 2) / height)[..., None]
    return np.clip(img * (1.0 - 0.35 * r), 0, 255).astype(np.uint8)


def _poly(img: np.ndarray, pts: np.ndarray, color) -> None:
    cv2.fillPoly(img, [np.round(pts * (1 << _SHIFT)).astype(np.int32)], color, cv2.LINE_AA, _SHIFT)


def _line(img: np.ndarray, pts: np.ndarray, color, thickness: int, closed: bool = False) -> None:
    cv2.polylines(img, [np.round(pts * (1 << _SHIFT)).astype(np.int32)], closed, color, thickness, cv2.LINE_AA,
                  _SHIFT)


def _ellipse(img: np.ndarray, centre, axes, angle: float, color, thickness: int = -1) -> None:
    c = tuple(int(round(v * (1 << _SHIFT))) for v in centre)
    ax = tuple(max(1, int(round(v * (1 << _SHIFT)))) for v in axes)
    cv2.ellipse(img, c, ax, angle, 0, 360, color, thickness, cv2.LINE_AA, _SHIFT)


def _region(img: np.ndarray, pts: np.ndarray, pad: int = 2) -> tuple[tuple[slice, slice], np.ndarray]:
    """Bounding box of ``pts`` inside ``img`` (slices) and its top-left corner (x, y)."""
    h, w = img.shape[:2]
    x0, y0 = np.clip(np.floor(pts.min(axis=0)).astype(int) - pad, 0, [w, h])
    x1, y1 = np.clip(np.ceil(pts.max(axis=0)).astype(int) + pad + 1, 0, [w, h])
    return (slice(y0, y1), slice(x0, x1)), np.array([x0, y0], float)


def _paint_inside(img: np.ndarray, pts: np.ndarray, paint: Callable[[np.ndarray, np.ndarray], None],
                  opacity: float = 1.0) -> None:
    """Run ``paint(layer, offset)`` on a crop of ``img`` and keep the result only inside polygon ``pts``.

    Works on the polygon's bounding box only, which keeps a frame at a few milliseconds.
    """
    box, off = _region(img, pts)
    if img[box].size == 0:
        return
    layer = img[box].copy()
    paint(layer, off)
    m = np.zeros(layer.shape[:2], np.uint8)
    _poly(m, pts - off, 255)
    a = (m.astype(np.float32) * (opacity / 255.0))[..., None]
    img[box] = (img[box] * (1 - a) + layer * a).astype(np.uint8)


def _shade(layer: np.ndarray, off: np.ndarray, tone: tuple[int, int, int], centre: np.ndarray, radii: np.ndarray,
           light: tuple[float, float, float], yaw_shift: float) -> None:
    """Fill ``layer`` (a crop at ``off``) with Lambert-shaded skin, treating the head as an ellipsoid."""
    yy, xx = np.mgrid[0:layer.shape[0], 0:layer.shape[1]].astype(np.float32)
    u = (xx + off[0] - centre[0]) / radii[0] - yaw_shift
    v = (yy + off[1] - centre[1]) / radii[1]
    nz = np.sqrt(np.clip(1 - u * u - v * v, 0.02, 1))
    lambert = np.clip(light[0] * u + light[1] * v + light[2] * nz, 0, 1)
    layer[:] = np.clip(np.array(tone, np.float32) * (0.5 + 0.55 * lambert)[..., None], 0, 255).astype(np.uint8)


def draw_face(canvas: np.ndarray, lm: np.ndarray, cranium: np.ndarray, app: Appearance, yaw: float,
              teeth_visible: float) -> np.ndarray:
    """Paint the face described by (68, 2) landmarks and the (K, 2) cranium outline onto ``canvas``.

    ``yaw`` (degrees) shifts the shading and ear visibility; ``teeth_visible`` in [0, 1]
    is how much of the mouth opening shows the upper teeth. Returns a new uint8 image.
    """
    img = canvas.copy()
    h, w = img.shape[:2]
    outline = np.concatenate([lm[0:17], cranium[::-1]])
    face_w = np.linalg.norm(lm[16] - lm[0])
    centre = (lm[0] + lm[16]) / 2
    head_h = np.linalg.norm(lm[8] - cranium[len(cranium) // 2])
    hair = tuple(int(c) for c in app.hair)
    skin = np.array(app.skin, float)

    # Hair behind the head, then neck and shoulders.
    if app.hair_style in ("long", "bun"):
        grow = 1.12 if app.hair_style == "long" else 1.06
        back = centre + (np.concatenate([cranium, lm[[14, 16]], lm[[0, 2]]]) - centre) * grow
        if app.hair_style == "long":
            back = np.concatenate([back[: len(cranium)], [lm[16] + [0.1 * face_w, 0.55 * head_h],
                                                          lm[0] + [-0.1 * face_w, 0.55 * head_h]]])
        else:
            top = cranium[len(cranium) // 2]
            _ellipse(img, top + [0, -0.08 * head_h], (0.2 * face_w, 0.13 * head_h), 0, hair)
        _poly(img, back, hair)
    shoulder_y = lm[8, 1] + 0.3 * head_h
    neck = np.array([lm[5] + [0.08 * face_w, 0], lm[11] - [0.08 * face_w, 0],
                     [lm[11, 0] - 0.06 * face_w, shoulder_y + 0.05 * head_h],
                     [lm[5, 0] + 0.06 * face_w, shoulder_y + 0.05 * head_h]])
    _poly(img, neck, tuple(int(c) for c in skin * 0.78))
    shoulders = np.array([[centre[0] - 1.5 * face_w, h + 5], [centre[0] - 1.25 * face_w, shoulder_y + 0.2 * head_h],
                          [centre[0] - 0.45 * face_w, shoulder_y], [centre[0] + 0.45 * face_w, shoulder_y],
                          [centre[0] + 1.25 * face_w, shoulder_y + 0.2 * head_h], [centre[0] + 1.5 * face_w, h + 5]])
    _poly(img, shoulders, app.clothes)
    # Ears, the far one hidden as the head turns.
    ear_axes = (0.06 * face_w, 0.12 * head_h)
    for idx, side in ((0, -1), (16, 1)):
        if side * yaw < 12:
            _ellipse(img, lm[idx] + [side * 0.03 * face_w, 0.06 * head_h], ear_axes, 0,
                     tuple(int(c) for c in skin * 0.85))

    # Skin with shading.
    radii = np.array([face_w / 2, head_h / 2])
    shade_centre = (centre + cranium[len(cranium) // 2] + lm[8]) / 3
    _paint_inside(img, outline, lambda layer, off: _shade(layer, off, app.skin, shade_centre, radii, app.light,
                                                          yaw / 60.0))

    # Nose: shadow on the side away from the light, then nostrils and tip highlight.
    side = 1 if app.light[0] < 0 else -1
    shadow = np.array([lm[27] + [side * 0.03 * face_w, 0], lm[30], lm[35 if side > 0 else 31]])
    _paint_inside(img, shadow, lambda layer, off: layer.__setitem__(..., skin * 0.72), opacity=0.45)
    _line(img, lm[[27, 30, 33]], tuple(int(c) for c in skin * 0.8), 1)
    nostril = (0.045 * face_w, 0.018 * head_h)
    for k in (32, 34):
        _ellipse(img, lm[k] + [0, -0.006 * head_h], nostril, 0, tuple(int(c) for c in skin * 0.35))
    _ellipse(img, lm[30] + [0, 0.01 * head_h], (0.03 * face_w, 0.015 * head_h), 0,
             tuple(int(min(255, c * 0.98 + 12)) for c in skin))

    # Eyes: sclera, iris and pupil clipped to the lids, then lid lines.
    for eye in (EYE_R, EYE_L):
        pts = lm[eye]
        ew = np.linalg.norm(pts[3] - pts[0])
        iris_c = pts.mean(axis=0)

        def eyeball(layer: np.ndarray, off: np.ndarray, pts=pts, ew=ew, c=iris_c) -> None:
            _poly(layer, pts - off, (238, 236, 230))
            _ellipse(layer, c - off, (0.22 * ew, 0.22 * ew), 0, app.iris)
            _ellipse(layer, c - off, (0.1 * ew, 0.1 * ew), 0, (15, 12, 12))
            _ellipse(layer, c - off + [-0.07 * ew, -0.07 * ew], (0.035 * ew, 0.035 * ew), 0, (250, 250, 250))

        _paint_inside(img, pts, eyeball)
        lid = tuple(int(c) for c in np.array(hair) * 0.6)
        _line(img, pts[[0, 1, 2, 3]], lid, max(1, int(round(0.09 * ew))))
        _line(img, pts[[3, 4, 5, 0]], tuple(int(c) for c in skin * 0.6), 1)

    # Brows as tapered thick strokes.
    brow = tuple(int(c) for c in np.array(hair) * 0.85)
    thick = max(2, int(round(0.035 * face_w)))
    _line(img, lm[17:22], brow, thick)
    _line(img, lm[22:27], brow, thick)

    # Lips, mouth interior and upper teeth.
    _poly(img, lm[LIPS_OUTER], app.lips)
    inner = lm[LIPS_INNER]
    opening = np.linalg.norm(inner[6] - inner[2])
    if opening > 0.6:
        top = inner[[0, 1, 2, 3, 4]]
        teeth = np.concatenate([top, top[::-1] + [0, min(opening, 0.06 * face_w) * teeth_visible]])

        def mouth(layer: np.ndarray, off: np.ndarray) -> None:
            _poly(layer, inner - off, (60, 18, 22))
            if teeth_visible > 0:
                _poly(layer, teeth - off, (236, 232, 220))

        _paint_inside(img, inner, mouth)
    _line(img, inner, tuple(int(c) for c in np.array(app.lips) * 0.55), 1, closed=True)

    # Fringe / short hair over the top of the head.
    if app.hair_style != "bald":
        # Hairline about a third of the way from the brows to the crown, lower at the temples.
        brow_y = (lm[19, 1] + lm[24, 1]) / 2
        inner_line = centre + (cranium - centre) * [0.9, 1.0]
        inner_line[:, 1] = brow_y + (cranium[:, 1] - brow_y) * (0.35 if app.hair_style == "short" else 0.28)
        cap = np.concatenate([centre + (cranium - centre) * 1.05, inner_line[::-1]])
        _poly(img, cap, hair)
    return img
