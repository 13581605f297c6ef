"""Does the committed latent model use the driving frame's motion at all? (run from the repository root)

On the held-out neutral-source setting (source: first frame of the neutral clip of the same identity and sentence;
driving: 8 frames of each emotional clip, as ``eat.latent.evaluate``), each driving frame is rendered twice from the
neutral source: with the driving keypoints (as scored) and with the source's own keypoints (no motion). If the two
renders are alike, the generator ignores the motion. Also printed, per model:

- the keypoints' displacement (driving − source, in pixels of the 64² frame), split into its head-pose part
  (R, t of the driving frame with the source's E) and its expression part (E_d − E_s), and the rank correlation of
  the expression part with the ground-truth mouth-landmark displacement over all scored frames;
- the dense-motion mask's weight on the background (identity) motion, averaged over the volume;
- the head-pose estimator's yaw, pitch and roll against the synthetic ground truth on the held-out frames
  (standard deviations and correlation).

Usage: python docs/probes/latent/nineteenth/motion_use.py [models/latent/osfv/model.pt models/latent/enhanced/model.pt]
"""

import json
import sys

import numpy as np
import torch
from scipy.stats import spearmanr

from eat.config import load_params
from eat.latent.data import groundtruth_head_pose, load_bank, neutral_partners, to_tensor
from eat.latent.evaluate import MOUTH, psnr, scored_frames
from eat.latent.losses import face_mask
from eat.latent.train import load_inference_model, training_tables
from eat.models.keypoints import compose_keypoints

torch.set_num_threads(1)
params = load_params("params.yaml")
_, held = training_tables("data/features/pose.parquet")
bank = groundtruth_head_pose(load_bank(held, params.signal.image_size, params.crop_align.size),
                             "data/synth/groundtruth/frames.parquet")
partner = neutral_partners(bank.clips)
half = bank.size / 2                                     # keypoints are in [-1, 1]: × S/2 gives pixels


@torch.no_grad()
def probe(path: str) -> dict:
    nets = load_inference_model(path)
    rows = {k: [] for k in ("gen", "still", "copy", "gen_vs_still", "kp_pose_px", "kp_expr_px", "mouth_px",
                            "background_mask", "pred_pose", "gt_pose")}
    for c in np.flatnonzero(partner >= 0):
        idx = scored_frames(bank, c, params.latent_train.eval_frames_per_clip)
        s = int(bank.start[partner[c]])
        driving, source = to_tensor(bank.frames[idx]), to_tensor(bank.frames[[s]]).expand(len(idx), -1, -1, -1)
        mask = torch.from_numpy(face_mask(bank.landmarks[idx], bank.size, params.latent_train.face_margin))
        canonical = nets.kp_detector(source)
        hs, hd = nets.he_estimator(source), nets.he_estimator(driving)
        (rs, ts, es), (rd, td, ed) = hs.transform(), hd.transform()
        kp_s, kp_d = compose_keypoints(canonical, rs, ts, es), compose_keypoints(canonical, rd, td, ed)
        moved = nets.generator(source, kp_s, kp_d)
        gen, still = moved["prediction"], nets.generator(source, kp_s, kp_s)["prediction"]
        rows["gen"].append(psnr(gen, driving, mask))
        rows["still"].append(psnr(still, driving, mask))
        rows["copy"].append(psnr(source, driving, mask))
        rows["gen_vs_still"].append(psnr(gen, still, mask))
        rows["kp_pose_px"].append((compose_keypoints(canonical, rd, td, es) - kp_s).norm(dim=-1).mean(-1) * half)
        rows["kp_expr_px"].append((ed - es).norm(dim=-1).mean(-1) * half)
        rows["mouth_px"].append(torch.from_numpy(np.linalg.norm(bank.landmarks[idx, MOUTH] - bank.landmarks[s, MOUTH],
                                                                axis=-1).mean(-1)))
        rows["background_mask"].append(moved["mask"][:, 0].flatten(1).mean(1))
        rows["pred_pose"].append(torch.stack(hd.degrees(), -1))
        rows["gt_pose"].append(torch.from_numpy(bank.pose[idx, :3]))
    r = {k: torch.cat(v).numpy() for k, v in rows.items()}
    pred, gt = r["pred_pose"], r["gt_pose"]
    return {"model": path, "frames": len(r["gen"]),
            "face_psnr": {k: round(float(r[k].mean()), 3) for k in ("gen", "still", "copy")},
            "face_psnr_gen_vs_still": round(float(r["gen_vs_still"].mean()), 3),
            "kp_displacement_px": {k: round(float(r[k].mean()), 3) for k in ("kp_pose_px", "kp_expr_px")},
            "mouth_displacement_px": round(float(r["mouth_px"].mean()), 3),
            "spearman_expr_vs_mouth": round(float(spearmanr(r["kp_expr_px"], r["mouth_px"])[0]), 3),
            "background_mask_weight": round(float(r["background_mask"].mean()), 3),
            "pose_std_pred_deg": [round(float(x), 2) for x in pred.std(0)],
            "pose_std_gt_deg": [round(float(x), 2) for x in gt.std(0)],
            "pose_corr": [round(float(np.corrcoef(pred[:, i], gt[:, i])[0, 1]), 3) for i in range(3)]}


for model in sys.argv[1:] or ["models/latent/osfv/model.pt", "models/latent/enhanced/model.pt"]:
    print(json.dumps(probe(model)))
