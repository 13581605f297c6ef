"""Byte-deterministic array files: the same arrays always give the same bytes (and DVC hashes).

``np.savez`` stamps each member with the current time, so two identical runs would differ;
:func:`write_npz` writes the same uncompressed npz layout (one ``.npy`` member per array,
readable by ``np.load``) with a fixed timestamp, atomically.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from eat.io.atomic import atomic_path

_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(path: Path | str, arrays: dict[str, np.ndarray]) -> None:
    """Atomically write ``arrays`` as an uncompressed npz with fixed member timestamps."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH), buffer.getvalue())
