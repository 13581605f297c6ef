"""A tiny, deterministic copy of what the pipeline writes under reports/ (for the report builder's tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from eat.config import EMOTIONS

VARIANTS = ["eat", "prompts_none", "prompts_shallow", "prompt_only", "prompt_edn", "loss_per", "loss_per_lat",
            "loss_per_lat_sync", "edn_random", "data_25", "data_50"]
MISSING = "prompts_shallow"      # no evaluation file: its row must say so
FACELESS = "loss_per"             # no face found in its videos: face-aligned metrics null, and said why
CURVES = ("eat", "data_25", "data_50")
BASELINE = "wav2lip"
# MEAD test clips per target emotion (24; no fear clip): angry's 2 clips are too few for a comparison, happy's 6 not
EMOTION_CLIPS = {"angry": 2, "contempt": 3, "disgusted": 3, "fear": 0, "happy": 6, "neutral": 3, "sad": 3,
                 "surprised": 4}
BASELINE_CLIPS = {"angry": 1, "happy": 1}   # the baseline's folder holds 2 of the clips: n = 2, no comparison


def recognised(i: int, emotion: str) -> bool:
    """Model ``i``'s classifier verdict: right on every clip of the first ``i % 8`` emotions, wrong on the rest."""
    return EMOTIONS.index(emotion) < i % 8


def evaluate_metrics(i: int, counts: dict[str, int] = EMOTION_CLIPS) -> dict:
    """Flat metrics as eat/scoring.py write_metrics writes them; model ``i`` gets distinct values, its Acc_emo
    those of :func:`emotion_rows` (``counts`` clips per emotion)."""
    out = {}
    clips = sum(counts.values())
    for dataset, base in (("MEAD", 20.0), ("LRW", 23.0)):
        out |= {f"{dataset}/clips": clips if dataset == "MEAD" else 6, f"{dataset}/PSNR": base + 0.25 * i,
                f"{dataset}/SSIM": 0.6 + 0.01 * i, f"{dataset}/face_frames": 1000,
                f"{dataset}/M-LMD": 3.0 - 0.1 * i, f"{dataset}/F-LMD": 3.5 - 0.1 * i,
                f"{dataset}/Sync_expert": 1.0 + 0.5 * i, f"{dataset}/Sync_expert_dist": 0.9,
                f"{dataset}/Sync_expert_abs_offset": 2.0, f"{dataset}/FD_emotion_fan": 40.0 - i,
                f"{dataset}/FD_emotion_fan_frames": 120}
    per = {e: (float(recognised(i, e)) if counts.get(e) else None) for e in EMOTIONS}   # no clip: null (NaN)
    present = [v for v in per.values() if v is not None]
    out |= {"MEAD/Acc_emo": sum(counts[e] * v for e, v in per.items() if v is not None) / clips,
            "MEAD/Acc_emo_mean": sum(present) / len(present)}
    return out | {f"MEAD/Acc_emo_{e}": v for e, v in per.items()}


def emotion_rows(i: int, counts: dict[str, int] = EMOTION_CLIPS) -> pd.DataFrame:
    """The per-clip MEAD rows (evaluate/<model>/mead_clips.parquet) behind :func:`evaluate_metrics`."""
    rows = [{"uid": f"MEAD__W009__{e}__level_3__{j:03d}", "emotion": e,
             "emotion_pred": e if recognised(i, e) else EMOTIONS[(EMOTIONS.index(e) + 1) % len(EMOTIONS)]}
            for e in EMOTIONS for j in range(counts.get(e, 0))]
    return pd.DataFrame(rows, columns=["uid", "emotion", "emotion_pred"])


def latent_metrics(variant: str, psnr: float) -> dict:
    part = {"frames": 384, "psnr": psnr, "psnr_copy_source": 25.9, "psnr_face": psnr - 1, "psnr_face_copy_source": 21.6}
    return {"variant": variant, "vgg19": {"vgg19": "substitute", "substitute": True},
            "heldout": {"clips": 48, "same_clip": part, "neutral_source": {**part, "psnr": psnr - 0.5}}}


def write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def write_fixture(root: Path, baseline: str | None = BASELINE) -> Path:
    """``root``/{params.yaml, dvc.lock, reports/…}; returns the reports folder."""
    variants = {v: {"prompts": "deep", "curve": v in CURVES} for v in VARIANTS}
    params = {"seed": 1, "data": {"mead_root": "data/synth/MEAD", "lrw_root": "data/synth/LRW"},
              "signal": {"image_size": 64}, "crop_align": {"backend": "mediapipe"},
              "audio_features": {"speech_backend": "ctc"}, "adaptation_variants": variants}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {
        "synth": {"outs": [{"path": "data/synth", "md5": "abc123.dir"}, {"path": "reports/synth/x.png", "md5": "0"}]},
        "ingest": {"outs": [{"path": "data/interim/manifest.parquet", "md5": "def456"}]}}}))
    reports = root / "reports"
    models = (["ground_truth", "pretrain", *VARIANTS] + ([f"baseline_{baseline}"] if baseline else [])
              + ["static", "latent_enhanced"])   # Table 3's latent_osfv is left out: its cells say why
    for i, model in enumerate(models):
        counts = BASELINE_CLIPS if model.startswith("baseline_") else EMOTION_CLIPS
        if model == FACELESS:
            write(reports / "evaluate" / model / "metrics.json", evaluate_metrics(i) | {
                f"{d}/{k}": 0 if k == "face_frames" else None
                for d in ("MEAD", "LRW") for k in ("face_frames", "PSNR", "SSIM", "M-LMD", "F-LMD", "FD_emotion_fan")})
        elif model != MISSING:
            write(reports / "evaluate" / model / "metrics.json", evaluate_metrics(i, counts))
        if model != MISSING:
            emotion_rows(i, counts).to_parquet(reports / "evaluate" / model / "mead_clips.parquet", index=False)
    for v in VARIANTS:
        write(reports / "adaptation" / v / "metrics.json",
              {"variant": v, "parameter_shares_percent": {"mapper": 30.0, "edn": 6.0, "eam": 1.5}})
        steps = np.arange(4) * 50 if v in CURVES else np.array([], dtype=int)
        frac = {"eat": 1.0, "data_50": 0.5, "data_25": 0.25}.get(v, 0)
        pd.DataFrame({"step": steps, "seconds": steps * 3.0, "acc_emo": np.minimum(1, steps / 200 * frac + 0.125)}
                     ).to_csv(reports / "adaptation" / v / "curve.csv", index=False)
    write(reports / "latent" / "osfv" / "metrics.json", latent_metrics("osfv", 21.0))
    write(reports / "latent" / "enhanced" / "metrics.json", latent_metrics("enhanced", 20.2))
    write(reports / "speech_recognizer" / "metrics.json", {"backend": "ctc", "substitute": True,
                                                          "substitute_for": "DeepSpeech 0.1.0"})
    write(reports / "audio_features" / "summary.json", {"speech_backend": "ctc"})
    write(reports / "emotion_classifier" / "metrics.json", {"weights": {"weights": "scratch", "pretrained": False}})
    strip = np.zeros((40, 200, 3), np.uint8)
    strip[:, :, 0] = np.linspace(0, 255, 200, dtype=np.uint8)
    import imageio.v3 as iio

    (reports / "emotion_control").mkdir(parents=True, exist_ok=True)
    iio.imwrite(reports / "emotion_control" / "interpolation.png", strip)
    return reports
