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

Resume: Ctrl-C writes the status table first (finished rows ``ok``, the rest ``not done``; a video is written
whole or not at all) and exits with status 130; running the same command again makes only the rows not yet
``ok`` (``--redo``: all of them).
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
import torch

from eat.config import Params
from eat.generate.emotion import describe, emotion_mix
from eat.generate.pipeline import Generator, frame_bar, generate, make_request
from eat.io.atomic import write_text_atomic
from eat.io.tables import write_csv_atomic
from eat.parallel import map_clips

REQUIRED = ("image", "audio", "emotion", "intensity", "output")


@lru_cache(maxsize=1)
def _generator(params_json: str, checkpoint: str, recognizer: str, pca_dir: str | None, threads: int,
               device: str | None) -> Generator:
    if threads:
        torch.set_num_threads(threads)
    return Generator(Params.model_validate_json(params_json), checkpoint, pca_dir, recognizer, device)


def _in_ray_worker() -> bool:
    if "ray" not in sys.modules:
        return False
    import ray  # local: Ray is heavy; it is only asked once something else loaded it (above)

    try:
        return ray.is_initialized() and ray._private.worker.global_worker.mode == ray._private.worker.WORKER_MODE
    except AttributeError:       # another Ray version's internals
        return False


def row_bar(total: int, label: str):
    """A bar over one row's frames: Ray's tqdm inside a Ray worker (the driver draws it), else tqdm's."""
    if _in_ray_worker():
        from ray.experimental.tqdm_ray import tqdm as ray_tqdm  # local: Ray is heavy; only inside a Ray worker

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


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch, after the status table was written; the message says how far it got."""


INPUTS = ("row", "image", "audio", "emotion", "intensity", "mix", "pose", "seed", "output")
"""The columns that define a row's video; a row whose inputs match an earlier ``ok`` record is not redone."""


def _inputs(row: dict) -> dict:
    return {k: row[k] for k in INPUTS if k in row}


def done_before(status: Path, rows: list[dict]) -> dict[int, dict]:
    """Row number → its record in the earlier status (``status``'s .json twin), for the rows recorded ``ok``
    with the same inputs whose output is still there: a resumed batch does not make them again."""
    twin = status.with_suffix(".json")
    earlier = {r["row"]: r for r in (json.loads(twin.read_text()) if twin.is_file() else []) if r["status"] == "ok"}
    done = {}
    for row in rows:
        record = earlier.get(row["row"])
        if record and all(str(record.get(k)) == str(v) for k, v in _inputs(row).items()) \
                and Path(row["output"]).is_file():
            done[row["row"]] = record
    return done


def _stamp(path: str) -> tuple[int, int] | None:
    """The output's inode and mtime: an atomic rename (a finished video) changes them."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _write_status(status: Path, records: list[dict]) -> None:
    write_csv_atomic(records, status)
    write_text_atomic(status.with_suffix(".json"), json.dumps(records, indent=2, default=str) + "\n")


def run_batch(csv: Path | str, job: BatchJob, status: Path | str | None = None, workers: int = 0,
              address: str | None = None, redo: bool = False) -> pd.DataFrame:
    """Run every row; write ``status`` (default ``<csv>.status.csv``) and its ``.json`` twin; return the table
    (``attrs["kept"]``: how many rows came from an earlier run).

    Rows an earlier run of the same status file recorded ``ok`` (same inputs, output still there) are kept, not
    made again, unless ``redo``. On Ctrl-C the status is written before :class:`BatchInterrupted` is raised:
    rows whose video was finished are ``ok``, the others ``not done`` (videos are written whole or not at all).
    """
    rows = read_rows(csv)
    status = Path(status) if status else Path(csv).with_suffix(".status.csv")
    kept = {} if redo else done_before(status, rows)
    todo = [row for row in rows if row["row"] not in kept]
    before = {row["row"]: _stamp(row["output"]) for row in todo}
    records = dict(kept)
    try:
        outcomes = map_clips(job, todo, desc="eat batch", workers=workers, address=address)
    except KeyboardInterrupt:
        for row in todo:
            finished = _stamp(row["output"]) not in (None, before[row["row"]])
            records[row["row"]] = _inputs(row) | {"status": "ok" if finished else "not done", "error": ""}
        _write_status(status, [records[row["row"]] for row in rows])
        ok = sum(r["status"] == "ok" for r in records.values())
        raise BatchInterrupted(f"{ok} of {len(rows)} rows done; status: {status} (and .json); run the same "
                               f"command again to make the other {len(rows) - ok}") from None
    for outcome in outcomes:
        records[outcome.item["row"]] = _inputs(outcome.item) | {
            "status": "error" if outcome.error else "ok",
            "error": outcome.error.splitlines()[0] if outcome.error else "", **(outcome.value or {})}
    ordered = [records[row["row"]] for row in rows]
    _write_status(status, ordered)
    table = pd.DataFrame(ordered)
    table.attrs["kept"] = len(kept)
    return table
