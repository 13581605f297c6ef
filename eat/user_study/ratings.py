"""Table 2 from collected rating files: per method, mean lip-sync and quality (1–5) with a t interval, and
Acc_emo (share of videos whose chosen emotion is the clip's) with a Wilson interval, both at 95 %.

Ratings are pooled over raters and videos (each rating one observation, as a per-method mean in the paper)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

Z95 = 1.959963984540054


def mean_ci(values) -> dict:
    """Mean and the half-width of its two-sided 95 % t interval (None for n < 2)."""
    x = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    if not len(x):
        return {"mean": None, "ci95": None, "n": 0}
    half = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else None
    return {"mean": float(x.mean()), "ci95": half, "n": int(len(x))}


def wilson(successes: int, n: int) -> dict:
    """Proportion in percent with its 95 % Wilson interval (low, high) and that interval's half-width."""
    if n == 0:
        return {"mean": None, "ci95": None, "low": None, "high": None, "n": 0}
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return {"mean": 100 * p, "ci95": 100 * half, "low": 100 * (centre - half), "high": 100 * (centre + half),
            "n": n}


def load_ratings(folder: Path | str, key: dict) -> tuple[pd.DataFrame, list[str]]:
    """Rows (rater, video, lipsync, quality, emotion) of every ``*.json`` in ``folder`` of this study."""
    rows, notes = [], []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            notes.append(f"{path.name}: unreadable ({err}) — skipped")
            continue
        if data.get("study_id") != key["study_id"]:
            notes.append(f"{path.name}: study {data.get('study_id')!r}, not this study's {key['study_id']!r} "
                         "— skipped")
            continue
        rater = data.get("rater") or path.stem
        for r in data.get("ratings", []):
            if r.get("video") in key["key"]:
                rows.append({"rater": rater, "video": r["video"], "lipsync": r.get("lipsync"),
                             "quality": r.get("quality"), "emotion": r.get("emotion")})
    return pd.DataFrame(rows, columns=["rater", "video", "lipsync", "quality", "emotion"]), notes


def table2(ratings_dir: Path | str, key_path: Path | str) -> dict:
    """Table 2 as a dict: ``methods[m] = {lipsync, quality, acc_emo: {mean, ci95, n}}``, raters, notes."""
    key = json.loads(Path(key_path).read_text())
    ratings, notes = load_ratings(ratings_dir, key)
    truth = pd.DataFrame.from_dict(key["key"], orient="index").rename(columns={"emotion": "emotion_true"})
    merged = ratings.join(truth, on="video")
    methods = {}
    for method in key["methods"]:
        part = merged[merged.method == method]
        chosen = part[part.emotion.notna()]
        methods[method] = {"lipsync": mean_ci(part.lipsync), "quality": mean_ci(part.quality),
                           "acc_emo": wilson(int((chosen.emotion == chosen.emotion_true).sum()), len(chosen))}
    return {"study_id": key["study_id"], "raters": int(ratings.rater.nunique()),
            "videos_per_method": key["videos_per_method"], "methods": methods,
            "notes": key.get("notes", []) + notes}


def to_markdown(table: dict) -> str:
    lines = [f"Table 2 (user study): {table['raters']} raters, {table['videos_per_method']} videos per method; "
             "mean ± 95 % interval half-width", "", "| method | Lip-sync (1–5) | Quality (1–5) | Acc_emo (%) | n |",
             "|:--|--:|--:|--:|--:|"]

    def cell(s: dict, digits: int) -> str:
        if s["mean"] is None:
            return "—"
        return f"{s['mean']:.{digits}f}" + ("" if s["ci95"] is None else f" ± {s['ci95']:.{digits}f}")

    for method, s in table["methods"].items():
        lines.append(f"| {method} | {cell(s['lipsync'], 2)} | {cell(s['quality'], 2)} | "
                     f"{cell(s['acc_emo'], 1)} | {s['lipsync']['n']} |")
    return "\n".join(lines + [""] + [f"- {n}" for n in table["notes"]]) + "\n"
