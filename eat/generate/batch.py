"""``eat batch rows.csv``: many videos from a CSV, in parallel on Ray, one status row per input row.

Columns: ``image``, ``audio``, ``emotion``, ``intensity`` (empty: 1), ``output``; optional ``mix`` (instead of
emotion/intensity), ``pose`` (static / natural / a driving video; default: the command's ``--pose``) and
``seed``. Relative paths are relative to the CSV's folder. Rows run through :func:`eat.parallel.map_clips` (a
local Ray by default, ``EAT_RAY_ADDRESS`` for a cluster): each Ray worker loads the models once and keeps them
for the rows it gets; a failing row (no face, unreadable audio, unknown emotion…) becomes an ``error`` status
with the reason, and the other rows go on. The status table (CSV and JSON) lists every row in input order.

Every row meets the checks of ``eat generate`` (a row with audio shorter than one A2ET window is an ``error``
row saying so); a CSV without rows is an error. Progress: a bar over the rows (with an ETA) and, per row in
progress, a bar over its frames (:func:`row_bar`: Ray's distributed tqdm inside a Ray worker, shown by the
driver; tqdm in-process with ``--workers 1``).
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from eat.config import Params
from eat.generate.emotion import describe, emotion_mix
from eat.generate.pipeline import Generator, frame_bar, generate, make_request
from eat.io.atomic import atomic_path, write_text_atomic

REQUIRED = ("image", "audio", "emotion", "intensity", "output")


@lru_cache(maxsize=1)
def _generator(params_json: str, checkpoint: str, recognizer: str, pca_dir: str | None, threads: int,
               device: str | None) -> Generator:
    import torch

    if threads:
        torch.set_num_threads(threads)
    return Generator(Params.model_validate_json(params_json), checkpoint, pca_dir, recognizer, device)


def _in_ray_worker() -> bool:
    if "ray" not in sys.modules:
        return False
    import ray

    try:
        return ray.is_initialized() and ray._private.worker.global_worker.mode == ray._private.worker.WORKER_MODE
    except AttributeError:       # another Ray version's internals
        return False


def row_bar(total: int, label: str):
    """A bar over one row's frames: Ray's tqdm inside a Ray worker (the driver draws it), else tqdm's."""
    if _in_ray_worker():
        from ray.experimental.tqdm_ray import tqdm as ray_tqdm

        return ray_tqdm(total=total, desc=label, unit="frame")
    return frame_bar(total, label, leave=False)


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == ""


@dataclass(frozen=True)
class BatchJob:
    """One row → one video (picklable: Ray ships it to the workers once)."""

    params_json: str
    checkpoint: str
    recognizer: str
    pca_dir: str | None
    pose: str
    seed: int
    paste_back: bool
    on_multiple: str
    threads: int
    device: str | None
    cwd: str

    def __call__(self, row: dict) -> dict:
        os.chdir(self.cwd)          # model files recorded with relative paths resolve as in the driver
        mix = emotion_mix(None if _blank(row.get("emotion")) else str(row["emotion"]),
                          None if _blank(row.get("intensity")) else float(row["intensity"]),
                          None if _blank(row.get("mix")) else str(row["mix"]))
        pose = self.pose if _blank(row.get("pose")) else str(row["pose"])
        seed = self.seed if _blank(row.get("seed")) else int(row["seed"])
        request = make_request(row["image"], row["audio"], row["output"], mix, pose, seed, self.paste_back,
                               self.on_multiple)  # type: ignore[arg-type]
        generator = _generator(self.params_json, self.checkpoint, self.recognizer, self.pca_dir, self.threads,
                               self.device)
        result = generate(generator, request, progress=row_bar)
        return {"emotion_mix": describe(mix), "n_frames": result.n_frames, "audio_seconds": result.audio_seconds,
                "seconds": round(sum(result.seconds.values()), 2),
                "frames_per_second": round(result.frames_per_second, 2)}


def read_rows(csv: Path | str) -> list[dict]:
    """The CSV's rows with paths made absolute (relative to the CSV's folder); checks the columns."""
    csv = Path(csv)
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: batch CSV not found")
    table = pd.read_csv(csv, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"{csv}: missing column(s) {', '.join(missing)}; expected {', '.join(REQUIRED)} "
                         "(optional: mix, pose, seed)")
    if table.empty:
        raise ValueError(f"{csv}: no rows; expected one row per video under the header {','.join(REQUIRED)}")
    base = csv.resolve().parent
    rows = []
    for i, row in enumerate(table.to_dict("records")):
        for col in ("image", "audio", "output", "pose"):
            value = str(row.get(col, "")).strip()
            if not value or (col == "pose" and value in ("static", "natural")):
                continue
            row[col] = value if Path(value).is_absolute() else str((base / value).resolve())
        row["row"] = i + 1
        rows.append(row)
    return rows


def run_batch(csv: Path | str, job: BatchJob, status: Path | str | None = None, workers: int = 0,
              address: str | None = None) -> pd.DataFrame:
    """Run every row; write ``status`` (default ``<csv>.status.csv``) and its ``.json`` twin; return the table."""
    from eat.parallel import map_clips

    rows = read_rows(csv)
    outcomes = map_clips(job, rows, desc="eat batch", workers=workers, address=address)
    records = []
    for outcome in outcomes:
        row = outcome.item
        record = {k: row.get(k, "") for k in ("row", "image", "audio", "emotion", "intensity", "output")}
        record |= {"status": "error" if outcome.error else "ok", "error": (outcome.error or "").splitlines()[0]
                   if outcome.error else "", **(outcome.value or {})}
        records.append(record)
    table = pd.DataFrame(records)
    status = Path(status) if status else Path(csv).with_suffix(".status.csv")
    with atomic_path(status) as tmp:
        table.to_csv(tmp, index=False)
    write_text_atomic(status.with_suffix(".json"), json.dumps(records, indent=2, default=str) + "\n")
    return table
