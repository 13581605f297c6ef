"""Held-out reconstruction of the latent model: PSNR against the copy-the-source baseline, and figures.

Protocol (face-vid2vid's reconstruction test): for every clip of the held-out MEAD identities,
the source is one frame and each scored driving frame is re-rendered from it with the driving
frame's own head pose and expression (K = R K_c + T + E, Eq. 1). Two sources:

- ``same_clip``: the clip's first frame (OSFV's setting);
- ``neutral_source``: the first frame of the neutral clip of the same identity and sentence,
  for emotional clips (the setting the enhanced latent is trained for: neutral → emotional).

The baseline copies the source frame unchanged; a model that learned nothing about motion
and expression cannot beat it. PSNR is over whole frames and over the face region (the
landmark hull of the driving frame), averaged over frames.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import torch

from eat.latent.data import FrameBank, neutral_partners, to_tensor
from eat.latent.losses import face_mask
from eat.models.keypoints import compose_keypoints
from eat.models.latent import LatentNetworks

matplotlib.use("Agg")


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) PSNR in dB of images in [0, 1]; over the pixels where ``mask`` (B, 1, H, W) is 1 if given."""
    err = (a - b) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        mse = (err * mask).flatten(1).sum(1) / (mask.flatten(1).sum(1) * a.shape[1]).clamp(min=1)
    return 10 * torch.log10(1 / mse.clamp(min=1e-10))


@torch.no_grad()
def reenact(nets: LatentNetworks, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
    """Render each driving frame (B, 3, S, S) from the single source frame (1, 3, S, S)."""
    canonical = nets.kp_detector(source)
    kp_source = compose_keypoints(canonical, *nets.he_estimator(source).transform())
    kp_driving = compose_keypoints(canonical.expand(len(driving), -1, -1), *nets.he_estimator(driving).transform())
    return nets.generator(source.expand(len(driving), -1, -1, -1), kp_source.expand(len(driving), -1, -1),
                          kp_driving)["prediction"]


def scored_frames(bank: FrameBank, c: int, n: int) -> np.ndarray:
    """``n`` driving frames of clip ``c`` spread evenly over it (its first frame excluded)."""
    frames = bank.clip_frames(c)[1:]
    return frames[np.unique(np.linspace(0, len(frames) - 1, n).round().astype(int))]


def evaluate(nets: LatentNetworks, bank: FrameBank, frames_per_clip: int, margin: float,
             device: torch.device | str = "cpu") -> tuple[dict, dict[str, dict]]:
    """Metrics over all clips of ``bank`` and, per identity, one example (source, driving, generated) for figures."""
    nets.eval()
    partner = neutral_partners(bank.clips)
    scores: dict[str, list[np.ndarray]] = {k: [] for k in (
        "same_clip_model", "same_clip_copy", "same_clip_model_face", "same_clip_copy_face",
        "neutral_source_model", "neutral_source_copy", "neutral_source_model_face", "neutral_source_copy_face")}
    examples: dict[str, dict] = {}
    for c, row in enumerate(bank.clips.itertuples(index=False)):
        driving_idx = scored_frames(bank, c, frames_per_clip)
        driving = to_tensor(bank.frames[driving_idx]).to(device)
        mask = torch.from_numpy(face_mask(bank.landmarks[driving_idx], bank.size, margin)).to(device)
        sources = {"same_clip": int(bank.start[c])}
        if partner[c] >= 0:
            sources["neutral_source"] = int(bank.start[partner[c]])
        for name, s in sources.items():
            source = to_tensor(bank.frames[[s]]).to(device)
            generated = reenact(nets, source, driving)
            copy = source.expand_as(driving)
            scores[f"{name}_model"].append(psnr(generated, driving).cpu().numpy())
            scores[f"{name}_copy"].append(psnr(copy, driving).cpu().numpy())
            scores[f"{name}_model_face"].append(psnr(generated, driving, mask).cpu().numpy())
            scores[f"{name}_copy_face"].append(psnr(copy, driving, mask).cpu().numpy())
            if name == "neutral_source" and row.level == max(bank.clips.level) and row.identity not in examples:
                examples[row.identity] = {"clip": row.clip_id, "source": source[0], "driving": driving,
                                          "generated": generated}
    metrics: dict = {"clips": len(bank.clips), "frames_per_clip": frames_per_clip}
    for setting in ("same_clip", "neutral_source"):
        if not scores[f"{setting}_model"]:
            continue
        model, copy = np.concatenate(scores[f"{setting}_model"]), np.concatenate(scores[f"{setting}_copy"])
        face_m, face_c = (np.concatenate(scores[f"{setting}_model_face"]),
                          np.concatenate(scores[f"{setting}_copy_face"]))
        metrics[setting] = {"frames": len(model), "psnr": round(float(model.mean()), 3),
                            "psnr_copy_source": round(float(copy.mean()), 3),
                            "psnr_gain_db": round(float(model.mean() - copy.mean()), 3),
                            "psnr_face": round(float(face_m.mean()), 3),
                            "psnr_face_copy_source": round(float(face_c.mean()), 3),
                            "frames_better_than_copy": round(float((model > copy).mean()), 3)}
    return metrics, examples


def _image(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


def save_side_by_side(example: dict, path: Path, title: str, columns: int = 4) -> None:
    """PNG: rows source | driving | generated, ``columns`` driving frames of one held-out clip."""
    import matplotlib.pyplot as plt

    from eat.io.atomic import atomic_path

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
