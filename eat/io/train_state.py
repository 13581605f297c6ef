"""One file holding a small training run's whole state, keyed by a digest of what the run depends on.

Used by the one single-process training, the speech recogniser's (the other models train on Ray Train,
eat/ray_train.py): every ``checkpoint_every`` steps the state goes atomically to one ``.pt`` file; a restart with
the same digest (seed, config, data) resumes from it, a file written for another digest is ignored. Layout:
``{"digest", "step", "losses", <part>: state_dict, …}`` with parts such as model, optimiser, schedule.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from eat.io.torch_files import save_torch_atomic

log = logging.getLogger(__name__)


def save_training_state(path: Path, digest: str, step: int, losses: list[float], parts: dict[str, Any]) -> None:
    """Write the step, losses and each part's ``state_dict()`` atomically under ``digest``."""
    save_torch_atomic({"digest": digest, "step": step, "losses": losses,
                       **{name: part.state_dict() for name, part in parts.items()}}, path)


def restore_training_state(path: Path, digest: str, parts: dict[str, Any]) -> tuple[int, list[float]] | None:
    """Load each part from ``path`` if it exists and was written for ``digest``: (step, losses), else None."""
    if not path.is_file():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if saved.get("digest") != digest:
        log.info("%s: written for other parameters or data; training from scratch", path)
        return None
    for name, part in parts.items():
        part.load_state_dict(saved[name])
    step = int(saved["step"])
    log.info("%s: resuming at step %d", path, step)
    return step, [float(v) for v in saved["losses"]]
