"""Per-clip feature files: byte-deterministic ``.npz`` written atomically, and the resume keys beside them.

The npz files are written by :func:`eat.io.arrays.write_npz` (byte-deterministic).

Resume key: ``<uid>.key`` beside ``<uid>.npz``, the SHA-256 of everything the features depend on
(the run digest: parameters and model fingerprint; plus the input wav's content hash). It is
written after the npz; a run reuses a clip's npz only if both exist and the key matches, so a
kill at any point leaves nothing that a rerun would wrongly trust.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from eat.io.atomic import write_text_atomic
from eat.io.hashing import file_sha256


def clip_key(run_digest: str, wav: Path) -> str:
    """Resume key of one clip: the run digest plus the input file's content hash.

    Content, not modification time: the key files are DVC outputs, so they must be the
    same bytes in every checkout that computes the same features.
    """
    return hashlib.sha256(f"{run_digest}\n{wav.name}\n{file_sha256(wav)}".encode()
                          ).hexdigest()


def is_done(npz: Path, key: str) -> bool:
    """True if ``npz`` exists and its key file holds ``key``."""
    key_file = npz.with_suffix(".key")
    return npz.is_file() and key_file.is_file() and key_file.read_text() == key


def mark_done(npz: Path, key: str) -> None:
    write_text_atomic(npz.with_suffix(".key"), key)
