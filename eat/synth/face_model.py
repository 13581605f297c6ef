"""A parametric 3D face for the synthetic dataset: 68 iBUG landmarks plus head outline.

Identity shape, facial action units (FACS) for the eight MEAD emotions, visemes
for speech and eye blinks all act on a 3D point set in the head frame
(millimetres; x to the image right, y down, z towards the camera; origin
between the eyes at the depth of the cheeks). :func:`project` applies the
6-DoF head pose and a pinhole camera, giving image-space landmarks in iBUG-68
order (jaw 0–16, brows 17–26, nose 27–35, eyes 36–47, outer lip 48–59, inner
lip 60–67), the same convention the detectors and LMD metrics use.

Emotion prototypes follow Ekman & Friesen's EMFACS action-unit combinations;
contempt is the unilateral AU14 that distinguishes it. Intensity levels scale
the action units (MEAD's three levels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 68
JAW, BROWS, NOSE = slice(0, 17), slice(17, 27), slice(27, 36)
EYE_R, EYE_L = slice(36, 42), slice(42, 48)  # subject's right eye is on the image left
LIPS_OUTER, LIPS_INNER = slice(48, 60), slice(60, 68)
UPPER_LID = [37, 38, 43, 44]
LOWER_LID = [40, 41, 46, 47]
N_CRANIUM = 13  # outline points over the top of the head, temple to temple

LEVEL_SCALE = {1: 0.45, 2: 0.72, 3: 1.0}

# Action-unit intensities of each emotion at level 3 (EMFACS prototypes).
EMOTION_AUS: dict[str, dict[str, float]] = {
    "angry": {"AU4": 1.0, "AU5": 0.5, "AU7": 0.8, "AU23": 0.9, "AU17": 0.5},
    "contempt": {"AU14R": 1.0, "AU4": 0.2},
    "disgusted": {"AU9": 1.0, "AU10": 0.9, "AU15": 0.5, "AU4": 0.5, "AU17": 0.4},
    "fear": {"AU1": 1.0, "AU2": 0.7, "AU4": 0.6, "AU5": 1.0, "AU20": 1.0, "AU26": 0.3},
    "happy": {"AU6": 1.0, "AU12": 1.0, "AU25": 0.3},
    "neutral": {},
    "sad": {"AU1": 1.0, "AU4": 0.6, "AU15": 1.0, "AU43": 0.3, "AU17": 0.4},
    "surprised": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU26": 0.7},
}


@dataclass(frozen=True)
class FaceShape:
    """Identity geometry in millimetres; drawn per identity by :func:`sample_shape`."""

    half_width: float = 70.0   # cheekbone half-width
    jaw_width: float = 0.85    # jaw half-width at mouth level, relative to half_width
    chin_y: float = 95.0
    eye_y: float = 0.0
    eye_inner: float = 16.0    # half distance between inner eye corners
    eye_width: float = 28.0
    eye_height: float = 10.0
    brow_gap: float = 16.0     # brow height above the eye line
    nose_length: float = 42.0
    nose_width: float = 16.0
    mouth_y: float = 62.0
    mouth_half_width: float = 24.0
    upper_lip: float = 6.5
    lower_lip: float = 8.0
    cranium_height: float = 120.0


def sample_shape(rng: np.random.Generator, female: bool) -> FaceShape:
    """Draw an identity's face geometry (kept within anatomically plausible ranges)."""
    u = rng.uniform
    scale = 0.93 if female else 1.0
    return FaceShape(
        half_width=u(64, 74) * scale, jaw_width=u(0.74, 0.92), chin_y=u(88, 102) * scale,
        eye_y=u(-3, 3), eye_inner=u(14, 19), eye_width=u(25, 31) * scale, eye_height=u(9, 12.5),
        brow_gap=u(14, 20), nose_length=u(36, 48) * scale, nose_width=u(13, 19) * scale,
        mouth_y=u(57, 66) * scale, mouth_half_width=u(20, 27) * scale,
        upper_lip=u(5, 8), lower_lip=u(6.5, 10), cranium_height=u(110, 125) * scale,
    )


def _ellipsoid_depth(x: np.ndarray, y: np.ndarray, s: FaceShape) -> np.ndarray:
    """Depth of the face surface, an ellipsoid cap: 0 at the silhouette, ~55 mm at the centre."""
    ry = np.where(y < 0, s.cranium_height, s.chin_y + 10)
    r2 = (x / (s.half_width * 1.02)) ** 2 + ((y - 10) / ry) ** 2
    return 55.0 * np.sqrt(np.clip(1.0 - r2, 0.0, None))


def neutral_landmarks(s: FaceShape) -> np.ndarray:
    """(68, 3) rest landmarks of an identity, iBUG order."""
    pts = np.zeros((N_LANDMARKS, 3))
    # Jaw: ear level on the subject's right (image left), round the chin to the other ear.
    t = np.linspace(np.pi, 0.0, 17)
    top_y = s.eye_y + 2
    jaw_x = np.cos(t) * s.half_width
    sweep = np.sin(np.linspace(0, np.pi, 17))
    narrowing = 1 - (1 - s.jaw_width) * sweep ** 0.7
    pts[JAW, 0] = jaw_x * narrowing
    pts[JAW, 1] = top_y + (s.chin_y - top_y) * sweep ** 1.6
    pts[JAW, 2] = 22.0 * sweep ** 2
    # Brows: outer → inner on the right, inner → outer on the left.
    brow_x = np.array([0.95, 0.78, 0.6, 0.43, 0.28])
    outer = s.eye_inner + s.eye_width + 6
    bx = s.eye_inner - 3 + (outer - s.eye_inner + 3) * brow_x
    by = s.eye_y - s.brow_gap - np.array([0, 3.5, 4.5, 4.0, 2.5])
    pts[17:22, 0], pts[17:22, 1] = -bx, by
    pts[22:27, 0], pts[22:27, 1] = bx[::-1], by[::-1]
    # Nose bridge (27–30) and base (31–35).
    pts[27:31, 0] = 0.0
    pts[27:31, 1] = s.eye_y + np.linspace(0, s.nose_length * 0.78, 4)
    pts[27:31, 2] = 52 + np.linspace(0, 24, 4)
    base_y = s.eye_y + s.nose_length
    pts[31:36, 0] = np.array([-1, -0.5, 0, 0.5, 1]) * s.nose_width / 2
    pts[31:36, 1] = base_y + np.array([-1.5, 0.5, 1.5, 0.5, -1.5])
    pts[31:36, 2] = 62 + np.array([-4, 4, 8, 4, -4])
    # Eyes: corner, two upper, corner, two lower (iBUG order).
    for sign, sl in ((-1, EYE_R), (1, EYE_L)):
        inner, outer_x = s.eye_inner, s.eye_inner + s.eye_width
        xs = np.array([outer_x, inner + 0.62 * s.eye_width, inner + 0.3 * s.eye_width, inner,
                       inner + 0.3 * s.eye_width, inner + 0.62 * s.eye_width])
        ys = s.eye_y + np.array([0.5, -0.5, -0.5, 0, 0.5, 0.5]) * s.eye_height
        if sign > 0:  # left eye starts at its inner corner
            xs = xs[[3, 2, 1, 0, 5, 4]]
            ys = ys[[3, 2, 1, 0, 5, 4]]
        pts[sl, 0], pts[sl, 1] = sign * xs, ys
    # Lips: outer 48–59 and inner 60–67, closed mouth.
    w, my = s.mouth_half_width, s.mouth_y
    ox = np.array([-1, -0.62, -0.28, 0, 0.28, 0.62, 1, 0.62, 0.28, 0, -0.28, -0.62]) * w
    oy = my + np.array([0, -0.75, -1.0, -0.8, -1.0, -0.75, 0, 0.85, 1.0, 1.0, 1.0, 0.85]) * (
        np.array([1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]) * s.upper_lip
        + np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1]) * s.lower_lip)
    pts[LIPS_OUTER, 0], pts[LIPS_OUTER, 1] = ox, oy
    ix = np.array([-0.88, -0.35, 0, 0.35, 0.88, 0.35, 0, -0.35]) * w
    pts[LIPS_INNER, 0], pts[LIPS_INNER, 1] = ix, my
    inner_surface = ~np.isin(np.arange(N_LANDMARKS), np.r_[0:17, 27:36])
    pts[inner_surface, 2] = _ellipsoid_depth(pts[inner_surface, 0], pts[inner_surface, 1], s)
    pts[48:68, 2] += 6.0  # lips stand out of the face surface
    return pts


def cranium_outline(s: FaceShape) -> np.ndarray:
    """(N_CRANIUM, 3) head outline from the right temple over the top to the left temple."""
    t = np.linspace(0.0, np.pi, N_CRANIUM)
    x = -np.cos(t) * s.half_width * 1.04
    y = s.eye_y + 2 - np.sin(t) * s.cranium_height
    return np.stack([x, y, np.zeros_like(x)], axis=1)


def _move(pts: np.ndarray, idx, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> None:
    pts[idx] += np.array([dx, dy, dz])


def apply_action_units(pts: np.ndarray, aus: dict[str, float], s: FaceShape) -> np.ndarray:
    """Displace rest landmarks by FACS action units (intensities 0–1). Returns a new array."""
    p = pts.copy()
    a = {k: float(v) for k, v in aus.items()}
    g = a.get
    inner_brows, outer_brows = [20, 21, 22, 23], [17, 18, 25, 26]
    mid_brows = [19, 24]
    # Brows: AU1 inner raise, AU2 outer raise, AU4 lower and draw together, AU9 pulls them down.
    _move(p, inner_brows, dy=-7 * g("AU1", 0)), _move(p, mid_brows, dy=-4 * g("AU1", 0))
    _move(p, outer_brows, dy=-7 * g("AU2", 0)), _move(p, mid_brows, dy=-4 * g("AU2", 0))
    lower = 5 * g("AU4", 0) + 3 * g("AU9", 0)
    _move(p, inner_brows + mid_brows, dy=lower)
    for right, left in ((20, 23), (21, 22), (19, 24)):
        p[right, 0] += 3.5 * g("AU4", 0)
        p[left, 0] -= 3.5 * g("AU4", 0)
    # Lids: AU5 widen, AU6/AU7 narrow from below, AU43 droop/close.
    _move(p, UPPER_LID, dy=-0.35 * s.eye_height * g("AU5", 0) + 0.15 * s.eye_height * g("AU7", 0))
    _move(p, LOWER_LID, dy=-0.3 * s.eye_height * (g("AU6", 0) + g("AU7", 0)) / 2 * 1.4)
    close = min(1.0, g("AU43", 0))
    for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
        p[up, 1] += (p[low, 1] - p[up, 1]) * close * 0.92
    # Nose: AU9 wrinkles and lifts the base.
    _move(p, range(31, 36), dy=-3 * g("AU9", 0))
    # Upper lip raiser AU10, chin raiser AU17 pushes the lower lip up.
    _move(p, [49, 50, 51, 52, 53], dy=-3.5 * g("AU10", 0))
    _move(p, [61, 62, 63], dy=-2.0 * g("AU10", 0))
    _move(p, [55, 56, 57, 58, 59], dy=-2.5 * g("AU17", 0))
    # Lip corners: AU12 up and out, AU15 down, AU20 stretch, AU14R one-sided (contempt), AU23 tighten.
    corners = {48: -1, 60: -1, 54: 1, 64: 1}
    for i, side in corners.items():
        p[i, 0] += side * (5 * g("AU12", 0) + 6 * g("AU20", 0) - 2.5 * g("AU23", 0))
        p[i, 1] += -6 * g("AU12", 0) + 6 * g("AU15", 0) + 1.5 * g("AU20", 0)
        if side > 0:
            p[i, 0] += 4 * g("AU14R", 0)
            p[i, 1] -= 5 * g("AU14R", 0)
    thin = 0.45 * g("AU23", 0)
    for outer, inner in ((50, 61), (51, 62), (52, 63), (56, 65), (57, 66), (58, 67), (49, 61), (53, 63)):
        p[outer, 1] += (p[inner, 1] - p[outer, 1]) * thin
    return p


def apply_viseme(pts: np.ndarray, aperture: float, width: float, rounding: float, s: FaceShape) -> np.ndarray:
    """Open the jaw and shape the lips (aperture, width, rounding in [0, 1]). Returns a new array."""
    p = pts.copy()
    jaw_drop = 16.0 * aperture
    # Lower lip, inner lower lip and chin follow the jaw; jaw-line points follow it less towards the ears.
    p[[55, 56, 57, 58, 59, 65, 66, 67], 1] += jaw_drop
    p[[61, 62, 63], 1] -= 1.5 * aperture
    weights = np.sin(np.linspace(0, np.pi, 17)) ** 3
    p[JAW, 1] += jaw_drop * weights * 0.85
    # Inner lip opening is rounder with rounding, the mouth narrower; spread widens it.
    spread = 1.0 + 0.22 * (width - 0.5) - 0.28 * rounding
    mouth_cx = 0.0
    lips = np.r_[48:68]
    p[lips, 0] = mouth_cx + (p[lips, 0] - mouth_cx) * spread
    p[lips, 2] += 7.0 * rounding
    corner_drop = 0.45 * jaw_drop
    p[[48, 54, 60, 64], 1] += corner_drop
    return p


def emotion_action_units(emotion: str, level: int) -> dict[str, float]:
    """AU intensities of ``emotion`` at MEAD intensity ``level`` (1–3)."""
    if emotion not in EMOTION_AUS:
        raise ValueError(f"unknown emotion {emotion!r}; valid: {', '.join(EMOTION_AUS)}")
    scale = LEVEL_SCALE[level]
    return {au: v * scale for au, v in EMOTION_AUS[emotion].items()}


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = R_roll(z) · R_yaw(y) · R_pitch(x); angles in degrees, positive yaw turns the face to the image right."""
    y, p, r = np.deg2rad([yaw, pitch, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Camera:
    """Pinhole camera looking at the head from ``distance`` mm; principal point (cx, cy) in pixels."""

    focal: float
    cx: float
    cy: float
    distance: float = 600.0


def project(points: np.ndarray, pose: np.ndarray, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Pose (yaw, pitch, roll [deg], tx, ty, tz [mm]) and project (N, 3) head-frame points.

    Rotation is about the head centre (behind the eyes). Returns (N, 2) pixel
    coordinates and (N,) depth towards the camera (larger = nearer).
    """
    centre = np.array([0.0, 20.0, -40.0])
    rot = rotation_matrix(*pose[:3])
    world = (points - centre) @ rot.T + centre + pose[3:6]
    depth = cam.distance - world[:, 2]
    xy = np.stack([cam.cx + cam.focal * world[:, 0] / depth, cam.cy + cam.focal * world[:, 1] / depth], axis=1)
    return xy, world[:, 2]
