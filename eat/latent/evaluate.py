"""Held-out reconstruction of the latent model: PSNR against the copy-the-source baseline, and figures.

Protocol (face-vid2vid's reconstruction test): for every clip of the held-out MEAD identities,
the source is one frame and each scored driving frame is re-rendered from it with the driving
frame's own head pose and expression (K = R K_c + T + E, Eq. 1). Two sources:

- ``same_clip``: the clip's first frame (OSFV's setting);
- ``neutral_source``: the first frame of the neutral clip of the same identity and sentence,
  for emotional clips (the setting the enhanced latent is trained for: neutral → emotional).

The baseline copies the source frame unchanged; a model that learned nothing about motion
and expression cannot beat it. PSNR is over whole frames, the face region (the landmark
hull of the driving frame) and the mouth region, averaged over frames. Copying is only
informative where the driving frame differs from the source, so each setting is also scored
on its ``moving`` half: the frames whose ground-truth mouth displacement from the source is
at or above the median (a rule fixed in advance, independent of the model). ``autoencode``
renders each frame from itself: what the decoder can reproduce at all.

Two numbers per setting say whether the driving frame reaches the render at all: ``psnr_face_vs_no_motion``,
the face PSNR between the render and the source rendered with its own keypoints (≈ 100 dB: the driving frame
changes nothing), and ``identity_flow_weight``, the dense motion's mean mask weight on the identity flow (≈ 1:
every voxel copies the source instead of following a keypoint).
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import matplotlib
import numpy as np
import torch

from eat.io.atomic import atomic_path
from eat.latent.data import FrameBank, neutral_partners, to_tensor
from eat.latent.losses import face_mask
from eat.models.keypoints import compose_keypoints
from eat.models.latent import LatentNetworks
from eat.preprocess.landmarks import make_detector
from metrics.align import detect

matplotlib.use("Agg")

MOUTH = slice(48, 68)      # iBUG mouth landmarks (outer and inner lip)
MOUTH_MARGIN = 0.5         # the mouth hull is a few pixels tall at 64²: grow it by half its size
MOVING_RULE = ("driving frames whose mean mouth-landmark (48-67) displacement from the source frame is at or "
               "above the median of the setting's scored frames (ground truth only)")


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) PSNR in dB of images in [0, 1]; over the pixels where ``mask`` (B, 1, H, W) is 1 if given."""
    err = (a - b) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        mse = (err * mask).flatten(1).sum(1) / (mask.flatten(1).sum(1) * a.shape[1]).clamp(min=1)
    return 10 * torch.log10(1 / mse.clamp(min=1e-10))


@torch.no_grad()
def reenact(nets: LatentNetworks, source: torch.Tensor, driving: torch.Tensor) -> dict[str, torch.Tensor]:
    """Render each driving frame (B, 3, S, S) from the single source frame (1, 3, S, S).

    Returns ``prediction`` (B, 3, S, S); ``still`` (1, 3, S, S), the source rendered with its own keypoints (no
    motion); ``identity_weight`` (B,), the dense motion's mean mask weight on the identity flow. A renderer whose
    predictions equal ``still`` and whose identity weight is near 1 ignores the driving frame (the motion path
    has collapsed onto copying the source).
    """
    canonical = nets.kp_detector(source)
    kp_source = compose_keypoints(canonical, *nets.he_estimator(source).transform())
    kp_driving = compose_keypoints(canonical.expand(len(driving), -1, -1), *nets.he_estimator(driving).transform())
    moved = nets.generator(source.expand(len(driving), -1, -1, -1), kp_source.expand(len(driving), -1, -1),
                           kp_driving)
    return {"prediction": moved["prediction"], "still": nets.generator(source, kp_source, kp_source)["prediction"],
            "identity_weight": moved["mask"][:, 0].flatten(1).mean(1)}


@torch.no_grad()
def reenact_pairs(nets: LatentNetworks, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
    """Render driving frame b (B, 3, S, S) from source frame b (B, 3, S, S), each with its own K_c."""
    canonical = nets.kp_detector(source)
    kp_source = compose_keypoints(canonical, *nets.he_estimator(source).transform())
    kp_driving = compose_keypoints(canonical, *nets.he_estimator(driving).transform())
    return nets.generator(source, kp_source, kp_driving)["prediction"]


def scored_frames(bank: FrameBank, c: int, n: int) -> np.ndarray:
    """``n`` driving frames of clip ``c`` spread evenly over it (its first frame excluded)."""
    frames = bank.clip_frames(c)[1:]
    return frames[np.unique(np.linspace(0, len(frames) - 1, n).round().astype(int))]


def moving_frames(displacement: np.ndarray) -> np.ndarray:
    """The frames a copy of the source cannot explain: mouth displacement at or above the set's median.

    ``displacement`` (N,): per scored frame, the mean distance in pixels between the driving
    frame's 20 mouth landmarks (iBUG 48–67) and the source frame's. The rule is fixed in advance
    and looks only at the ground truth, never at the model's output.
    """
    return displacement >= np.median(displacement) if len(displacement) else np.zeros(0, bool)


def _summary(s: dict[str, np.ndarray], keep: np.ndarray) -> dict:
    model, copy = s["model"][keep], s["copy"][keep]
    found = {"face_found_fraction": round(float(s["found"][keep].mean()), 3)} if "found" in s else {}
    return {"frames": int(keep.sum()), "psnr": round(float(model.mean()), 3), **found,
            "psnr_copy_source": round(float(copy.mean()), 3),
            "psnr_gain_db": round(float(model.mean() - copy.mean()), 3),
            "psnr_face": round(float(s["model_face"][keep].mean()), 3),
            "psnr_face_copy_source": round(float(s["copy_face"][keep].mean()), 3),
            "psnr_face_gain_db": round(float(s["model_face"][keep].mean() - s["copy_face"][keep].mean()), 3),
            "psnr_mouth": round(float(s["model_mouth"][keep].mean()), 3),
            "psnr_mouth_copy_source": round(float(s["copy_mouth"][keep].mean()), 3),
            "frames_better_than_copy": round(float((model > copy).mean()), 3),
            "face_better_than_copy": round(float((s["model_face"][keep] > s["copy_face"][keep]).mean()), 3),
            "psnr_face_vs_no_motion": round(float(s["vs_still_face"][keep].mean()), 3),
            "identity_flow_weight": round(float(s["identity_weight"][keep].mean()), 3)}


def faces_found(images: torch.Tensor, backend: str) -> np.ndarray:
    """(B,) bool: whether the metrics' landmark detector (:func:`metrics.align.detect`) finds a face in each
    generated frame (B, 3, S, S) — a renderer whose output no detector reads cannot be scored by Table 1.
    A detector of its own per call, closed after: MediaPipe tracks, and must not carry one clip's face into the next."""
    frames = (images.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    with closing(make_detector(backend)) as detector:
        return ~np.isnan(detect(frames, detector)).any(axis=(1, 2))


def evaluate(nets: LatentNetworks, bank: FrameBank, frames_per_clip: int, margin: float,
             device: torch.device | str = "cpu", face_detector: str | None = None) -> tuple[dict, dict[str, dict]]:
    """Metrics over all clips of ``bank`` and, per identity, one example (source, driving, generated) for figures.

    Per source setting (``same_clip``, ``neutral_source``): PSNR of the model and of the copied
    source over whole frames, the face region and the mouth region (landmarks 48–67, hull grown by
    ``MOUTH_MARGIN``); ``<setting>_moving`` repeats them on the frames :func:`moving_frames` selects.
    ``autoencode`` renders every scored frame from itself (identity motion): the decoder's fidelity.
    With ``face_detector`` (a landmark backend), each setting also reports ``face_found_fraction``.
    """
    nets.eval()
    partner = neutral_partners(bank.clips)
    fields = ("model", "copy", "model_face", "copy_face", "model_mouth", "copy_mouth", "displacement",
              "vs_still_face", "identity_weight") + \
        (("found",) if face_detector else ())
    scores: dict[str, dict[str, list[np.ndarray]]] = {s: {f: [] for f in fields}
                                                      for s in ("same_clip", "neutral_source")}
    autoencode: dict[str, list[np.ndarray]] = {"psnr": [], "psnr_face": []} | (
        {"face_found_fraction": []} if face_detector else {})
    examples: dict[str, dict] = {}
    for c, row in enumerate(bank.clips.itertuples(index=False)):
        driving_idx = scored_frames(bank, c, frames_per_clip)
        driving = to_tensor(bank.frames[driving_idx]).to(device)
        landmarks = bank.landmarks[driving_idx]
        mask = torch.from_numpy(face_mask(landmarks, bank.size, margin)).to(device)
        mouth = torch.from_numpy(face_mask(landmarks[:, MOUTH], bank.size, MOUTH_MARGIN)).to(device)
        itself = reenact_pairs(nets, driving, driving)
        autoencode["psnr"].append(psnr(itself, driving).cpu().numpy())
        autoencode["psnr_face"].append(psnr(itself, driving, mask).cpu().numpy())
        if face_detector:
            autoencode["face_found_fraction"].append(faces_found(itself, face_detector))
        sources = {"same_clip": int(bank.start[c])}
        if partner[c] >= 0:
            sources["neutral_source"] = int(bank.start[partner[c]])
        for name, s in sources.items():
            source = to_tensor(bank.frames[[s]]).to(device)
            rendered = reenact(nets, source, driving)
            generated, copy = rendered["prediction"], source.expand_as(driving)
            out = scores[name]
            out["vs_still_face"].append(psnr(generated, rendered["still"].expand_as(driving), mask).cpu().numpy())
            out["identity_weight"].append(rendered["identity_weight"].cpu().numpy())
            for kind, image in (("model", generated), ("copy", copy)):
                out[kind].append(psnr(image, driving).cpu().numpy())
                out[f"{kind}_face"].append(psnr(image, driving, mask).cpu().numpy())
                out[f"{kind}_mouth"].append(psnr(image, driving, mouth).cpu().numpy())
            if face_detector:
                out["found"].append(faces_found(generated, face_detector))
            out["displacement"].append(np.linalg.norm(landmarks[:, MOUTH] - bank.landmarks[s, MOUTH], axis=-1).mean(-1))
            if name == "neutral_source" and row.level == max(bank.clips.level) and row.identity not in examples:
                examples[row.identity] = {"clip": row.clip_id, "source": source[0], "driving": driving,
                                          "generated": generated}
    metrics: dict = {"clips": len(bank.clips), "frames_per_clip": frames_per_clip}
    for setting, lists in scores.items():
        if not lists["model"]:
            continue
        s = {k: np.concatenate(v) for k, v in lists.items()}
        metrics[setting] = _summary(s, np.ones(len(s["model"]), bool))
        moving = moving_frames(s["displacement"])
        metrics[f"{setting}_moving"] = {**_summary(s, moving), "rule": MOVING_RULE,
                                        "min_mouth_displacement_px": round(float(s["displacement"][moving].min()), 3)}
    if autoencode["psnr"]:
        metrics["autoencode"] = {k: round(float(np.concatenate(v).mean()), 3) for k, v in autoencode.items()}
    return metrics, examples


def _image(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def save_side_by_side(example: dict, path: Path, title: str, columns: int = 4) -> None:
    """PNG: rows source | driving | generated, ``columns`` driving frames of one held-out clip."""
    import matplotlib.pyplot as plt  # local: only this figure needs pyplot

    n = min(columns, len(example["driving"]))
    pick = np.linspace(0, len(example["driving"]) - 1, n).round().astype(int)
    fig, axes = plt.subplots(3, n, figsize=(1.8 * n, 5.6), squeeze=False)
    for j, k in enumerate(pick):
        for i, (label, img) in enumerate((("source (neutral)", example["source"]),
                                          ("driving", example["driving"][k]),
                                          ("generated", example["generated"][k]))):
            ax = axes[i, j]
            ax.imshow(_image(img), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"{title}\n{example['clip']}", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
