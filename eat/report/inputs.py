"""Read the pipeline's metric files (all optional: a missing file becomes a reason, never an error).

Layout read (relative to the reports folder, default ``reports/``):

- ``evaluate/<model>/metrics.json`` — flat ``"<DATASET>/<metric>"`` numbers (eat/scoring.py write_metrics);
  models ``ground_truth``, ``pretrain``, every key of ``params.yaml`` ``adaptation_variants`` and any
  ``baseline_<method>``; ``"<DATASET>/clips"`` is the number of scored clips, every one of which Acc_emo
  counts (metrics/table.py aggregate), unless ``"<DATASET>/acc_emo_clips"`` says otherwise (the Ground Truth
  row's Acc_emo counts every MEAD test clip, not only the scored sample);
- ``evaluate/<model>/mead_clips.parquet`` — the per-clip rows (``emotion``, ``emotion_pred``): the number of
  clips behind each per-emotion Acc_emo (Table 7), which metrics.json does not hold; ``mead_emotion.parquet``
  (:data:`EMOTION_ROWS`) instead where present;
- ``adaptation/<variant>/metrics.json`` (``parameter_shares_percent``) and ``curve.csv`` (step, seconds,
  acc_emo; Fig. 5); ``emotion_control/interpolation.png`` (Fig. 12);
- ``latent/{osfv,enhanced}/metrics.json`` (Table 3); ``speech_recognizer/metrics.json``,
  ``audio_features/summary.json``, ``emotion_classifier/metrics.json`` (substitute flags);
- ``user_study/table2.json`` (Table 2, from ``stages/user_study.py table``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from eat.paths import BASELINES, REPORTS

LATENT_RECONSTRUCTIONS = {"latent_osfv": "osfv", "latent_enhanced": "enhanced"}
"""Table 3's evaluated rows: each test clip re-rendered by one latent model (``models/latent/<variant>``) from the
keypoints it detects in the clip's own frames (no audio, no A2ET): what the latent space carries."""
STATIC = "static"
"""Table 1's floor: every frame is the clip's source image (MEAD: the neutral source; LRW: the first frame), the
video a model that moves nothing would make; the issue's Pretrain bars compare with it on the same clips."""
REFERENCE_MODELS = ("ground_truth", "pretrain", STATIC, *LATENT_RECONSTRUCTIONS)
BASELINE_PREFIX = "baseline_"
EMOTION_ROWS = "mead_emotion.parquet"   # a model's Acc_emo rows when they are not its scored clips' (Ground Truth)


@dataclass
class Loaded:
    """One optional file: its content, or why it is absent."""

    path: Path
    data: Any = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def read_json(path: Path) -> Loaded:
    if not path.is_file():
        return Loaded(path, reason=f"{path} not found")
    try:
        return Loaded(path, json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError) as err:
        return Loaded(path, reason=f"{path} unreadable: {err}")


def read_emotion_counts(path: Path) -> Loaded:
    """``{emotion: clips}`` of the per-clip rows that carry an emotion prediction (what Acc_emo counts)."""
    if not path.is_file():
        return Loaded(path, reason=f"{path} not found")
    try:
        rows = pd.read_parquet(path, columns=["emotion", "emotion_pred"])
    except Exception as err:     # a missing column or a broken file: the counts are unknown, never an error
        return Loaded(path, reason=f"{path} unreadable: {type(err).__name__}: {err}")
    rows = rows[rows.emotion_pred.notna()]
    return Loaded(path, {str(e): int(n) for e, n in rows.emotion.value_counts().items()})


def read_curve(path: Path) -> Loaded:
    if not path.is_file():
        return Loaded(path, reason=f"{path} not found")
    frame = pd.read_csv(path)
    if frame.empty:
        return Loaded(path, reason=f"{path} is empty (the variant has no Fig. 5 curve)")
    return Loaded(path, frame)


@dataclass
class RunResults:
    """Everything the report reads from one pipeline run."""

    reports_dir: Path
    params: dict
    evaluate: dict[str, Loaded]                       # model → flat metrics
    adaptation: dict[str, Loaded]                      # variant → metrics.json
    curves: dict[str, Loaded]                          # variant → curve.csv
    latent: dict[str, Loaded]                          # osfv / enhanced → metrics.json
    side: dict[str, Loaded] = field(default_factory=dict)   # speech_recognizer, audio_features, emotion_classifier
    user_study: Loaded | None = None
    interpolation: Path | None = None
    baselines: list[str] = field(default_factory=list)      # methods with a videos folder or an evaluation
    emotion_counts: dict[str, Loaded] = field(default_factory=dict)   # model → {emotion: MEAD clips}

    def metric(self, model: str, key: str) -> float | None:
        """``key`` (e.g. ``"MEAD/PSNR"``) of ``model``'s evaluation, None where absent or null."""
        loaded = self.evaluate.get(model)
        if loaded is None or not loaded.ok:
            return None
        value = loaded.data.get(key)
        return None if value is None else float(value)

    def acc_clips(self, model: str, dataset: str = "MEAD", emotion: str | None = None) -> int | None:
        """The clips behind ``model``'s Acc_emo: all scored clips of ``dataset`` (``emotion`` None; also the
        clips behind the per-emotion mean), or those of one target emotion (MEAD per-clip rows); None where
        unknown."""
        if emotion is None:
            clips = self.metric(model, f"{dataset}/acc_emo_clips")
            clips = self.metric(model, f"{dataset}/clips") if clips is None else clips
            return None if clips is None else int(clips)
        loaded = self.emotion_counts.get(model)
        return loaded.data.get(emotion, 0) if loaded is not None and loaded.ok else None


def load_results(reports_dir: Path | str = REPORTS, params_path: Path | str = "params.yaml",
                 baselines_dir: Path | str | None = BASELINES) -> RunResults:
    """Read every metric file the report uses; see the module docstring for the layout."""
    reports = Path(reports_dir)
    params = yaml.safe_load(Path(params_path).read_text()) if Path(params_path).is_file() else {}
    variants = list((params.get("adaptation_variants") or {}).keys())
    baselines = sorted({p.parent.name[len(BASELINE_PREFIX):]
                        for p in reports.glob(f"evaluate/{BASELINE_PREFIX}*/metrics.json")}
                       | ({p.name for p in Path(baselines_dir).iterdir() if p.is_dir()}
                          if baselines_dir and Path(baselines_dir).is_dir() else set()))
    models = [*REFERENCE_MODELS, *variants, *(BASELINE_PREFIX + b for b in baselines)]
    evaluate = {m: read_json(reports / "evaluate" / m / "metrics.json") for m in models}
    for b in baselines:
        loaded = evaluate[BASELINE_PREFIX + b]
        if not loaded.ok and baselines_dir:
            loaded.reason = (f"videos in {Path(baselines_dir) / b}/ but {loaded.path} not found "
                             "(evaluate the folder first)")
    interpolation = reports / "emotion_control" / "interpolation.png"
    return RunResults(
        reports_dir=reports, params=params, evaluate=evaluate,
        adaptation={v: read_json(reports / "adaptation" / v / "metrics.json") for v in variants},
        curves={v: read_curve(reports / "adaptation" / v / "curve.csv") for v in variants},
        latent={v: read_json(reports / "latent" / v / "metrics.json") for v in ("osfv", "enhanced")},
        side={"speech_recognizer": read_json(reports / "speech_recognizer" / "metrics.json"),
              "audio_features": read_json(reports / "audio_features" / "summary.json"),
              "emotion_classifier": read_json(reports / "emotion_classifier" / "metrics.json")},
        user_study=read_json(reports / "user_study" / "table2.json"),
        interpolation=interpolation if interpolation.is_file() else None,
        baselines=baselines,
        emotion_counts={m: read_emotion_counts(emotion_rows(reports / "evaluate" / m)) for m in models})


def emotion_rows(model_dir: Path) -> Path:
    """The per-clip rows behind a model's Acc_emo: :data:`EMOTION_ROWS` where present, else its scored clips'."""
    return model_dir / EMOTION_ROWS if (model_dir / EMOTION_ROWS).is_file() else model_dir / "mead_clips.parquet"
