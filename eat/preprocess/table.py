"""Read and write the preprocessing tables (manifest, per-stage tables, quarantines) atomically."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from eat import schema
from eat.io.atomic import atomic_path


def write_table(frame: pd.DataFrame, path: Path | str, table_schema: pa.Schema | None = None) -> None:
    """Write ``frame`` as parquet (validated against ``table_schema`` when given), atomically."""
    table = pa.Table.from_pandas(frame, schema=table_schema, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def write_quarantine(rows: list[dict], path: Path | str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=schema.QUARANTINE.names)
    write_table(frame, path, schema.QUARANTINE)
    return frame


def quarantine_row(clip_id: str, stage: str, path: Path | str, reason: str) -> dict:
    return {"clip_id": clip_id, "stage": stage, "path": str(path), "reason": reason}
