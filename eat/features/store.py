"""Per-clip feature files: byte-deterministic ``.npz`` written atomically, and the resume keys beside them.

``np.savez`` stamps each member with the current time, so two identical runs would differ in
bytes (and DVC hashes); :func:`write_npz` writes the same uncompressed npz layout (one ``.npy``
member per array, readable by ``np.load``) with a fixed timestamp.

Resume key: ``<uid>.key`` beside ``<uid>.npz``, the SHA-256 of everything the features depend on
(the run digest: parameters and model fingerprint; plus the input wav's content hash). It is
written after the npz; a run reuses a clip's npz only if both exist and the key matches, so a
kill at any point leaves nothing that a rerun would wrongly trust.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from eat.io.atomic import atomic_path, write_text_atomic

_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(path: Path | str, arrays: dict[str, np.ndarray]) -> None:
    """Atomically write ``arrays`` as an uncompressed npz with fixed member timestamps."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=_EPOCH), buffer.getvalue())


def clip_key(run_digest: str, wav: Path) -> str:
    """Resume key of one clip: the run digest plus the input file's content hash.

    Content, not modification time: the key files are DVC outputs, so they must be the
    same bytes in every checkout that computes the same features.
    """
    return hashlib.sha256(f"{run_digest}\n{wav.name}\n{hashlib.sha256(wav.read_bytes()).hexdigest()}".encode()
                          ).hexdigest()


def is_done(npz: Path, key: str) -> bool:
    """True if ``npz`` exists and its key file holds ``key``."""
    key_file = npz.with_suffix(".key")
    return npz.is_file() and key_file.is_file() and key_file.read_text() == key


def mark_done(npz: Path, key: str) -> None:
    write_text_atomic(npz.with_suffix(".key"), key)
