"""Small CSV tables (training logs, status and listing files) written atomically."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from eat.io.atomic import atomic_path


def write_csv_atomic(rows: pd.DataFrame | Sequence[Mapping[str, Any]], path: Path | str,
                     columns: Sequence[str] | None = None, decimals: int | None = None) -> None:
    """Write ``rows`` (a frame, or one mapping per row) as CSV without the index, never half-written.

    ``columns``: the columns and their order (``pd.DataFrame``'s argument: missing ones come out empty, so an
    empty table still has its header). ``decimals``: round every float column to that many places first. One
    writer for every stage's CSV, so all of them have the same format (pandas' defaults) and are atomic.
    """
    frame = pd.DataFrame(rows, columns=columns)
    if decimals is not None:
        frame = frame.round(decimals)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
