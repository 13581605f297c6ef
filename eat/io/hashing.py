"""Content hashes: the SHA-256 helpers behind resume keys and weight checksums."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def settings_digest(settings: Mapping[str, Any], parts: Iterable[bytes | str | np.ndarray] = ()) -> str:
    """Hex SHA-256 of ``settings`` as sorted-key JSON (``json.dumps`` defaults otherwise), then of each of
    ``parts`` in the order given (a ``str`` as UTF-8, an array as its C-order bytes, ``array.tobytes()``):
    the resume key behind the stages' training checkpoints and per-clip records.

    A stage passes what its outputs depend on: its JSON-able settings, then the data or code they were made
    from (array bytes, file hashes, source files). A saved checkpoint or output is reused only when the digest
    is unchanged, so the encoding here must never change: the committed checkpoints are keyed by it.
    ``parts`` is consumed lazily and arrays are hashed in place (copied only when not C-contiguous), so
    hashing a whole training set needs no second copy of it in memory.
    """
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else
                 np.ascontiguousarray(part) if isinstance(part, np.ndarray) else part)
    return h.hexdigest()
