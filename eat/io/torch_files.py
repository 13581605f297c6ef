"""Write a ``torch.save`` file atomically and with the same bytes for the same contents.

``torch.save`` to a path names the zip archive's root folder after the file. Written straight to
the atomic temporary (``.model.pt.<pid>.partial``, :func:`eat.io.atomic.atomic_path`), equal weights
would give different bytes on every run, so DVC would see a changed output and rerun every stage
after it. Serialised in memory first, the archive is always named ``archive``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from eat.io.atomic import atomic_path


def save_torch_atomic(obj: Any, path: Path | str) -> None:
    """``torch.save(obj)`` to ``path``: byte-identical for identical contents, never half-written."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
