"""Run a per-clip stage: parallel on Ray, resumable, with a quarantine for clips that fail.

Each clip's outputs are written atomically by the stage's ``work`` function, then a
small record ``<uid>.json`` stores the result under a key: the hash of the clip's
input files (content), the stage's parameters and the stage's source code. A rerun
reuses a record whose key matches (resume after a kill, at any granularity) and
recomputes everything else, so a changed input, parameter or code never leaves a
stale output behind. Files of clips that left the input table are removed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import pandas as pd

from eat.io.atomic import write_text_atomic
from eat.io.hashing import file_sha256, settings_digest
from eat.parallel import map_clips
from eat.preprocess.table import quarantine_row

log = logging.getLogger(__name__)


def code_digest(modules: Iterable[str]) -> str:
    """Hash of the source files of the given modules (what a stage's outputs depend on besides data)."""
    h = hashlib.sha256()
    for name in sorted(modules):
        module = importlib.import_module(name)
        h.update(Path(module.__file__).read_bytes())  # type: ignore[arg-type]
    return h.hexdigest()


def _run_one(row: dict, work: Callable[[dict, Path], dict], out_dir: Path, input_columns: tuple[str, ...],
             settings: dict) -> dict:
    key = settings_digest(settings, (file_sha256(row[column]) for column in input_columns))
    record = out_dir / f"{row['uid']}.json"
    if record.exists():
        saved = json.loads(record.read_text())
        if saved.get("key") == key:
            return saved["result"]
    result = work(row, out_dir)
    write_text_atomic(record, json.dumps({"key": key, "result": result}))
    return result


def run_per_clip(stage: str, table: pd.DataFrame, work: Callable[[dict, Path], dict], out_dir: Path | str, *,
                 input_columns: tuple[str, ...], settings: dict, code_modules: Iterable[str], workers: int,
                 address: str) -> tuple[pd.DataFrame, list[dict]]:
    """Apply ``work(row, out_dir) -> new columns`` to every row; returns (table of good clips, quarantine rows)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fingerprint = {"settings": settings, "code": code_digest(code_modules)}
    rows = table.to_dict("records")
    fn = partial(_run_one, work=work, out_dir=out_dir, input_columns=input_columns, settings=fingerprint)
    outcomes = map_clips(fn, rows, desc=stage, workers=workers, address=address)
    good, quarantine = [], []
    for outcome in outcomes:
        row = outcome.item
        if outcome.error is None:
            good.append({**row, **outcome.value})
        else:
            quarantine.append(quarantine_row(row["clip_id"], stage, row[input_columns[0]], outcome.error))
    _prune(out_dir, {row["uid"] for row in rows})
    log.info("%s: %d clips done, %d quarantined", stage, len(good), len(quarantine))
    columns = list(table.columns) + [c for c in (good[0] if good else {}) if c not in table.columns]
    return pd.DataFrame(good, columns=columns), quarantine


def _prune(out_dir: Path, keep: set[str]) -> None:
    for path in out_dir.iterdir():
        uid = path.name.split(".")[0]
        if path.is_file() and uid and uid not in keep:
            path.unlink()
