"""Torch's process-wide settings for reproducible results, set for a block and restored after it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch

SUPERVISOR_THREADS = 2
"""Torch threads of the lip-sync expert and Emotion-FAN training: measured on the 2-core AMX machine, 2 threads
take Emotion-FAN from 80 to 55 ms per step and the expert from 30 to 25 ms. A fixed count (not the machine's)
keeps their results the same on any machine."""


@contextlib.contextmanager
def reproducible_torch(threads: int | None = None,
                       deterministic: bool | Literal["warn"] | None = None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads and deterministic algorithms on or off; restore both after.

    ``threads``: a fixed count gives results independent of the machine's core count; one thread is the fastest
    for the speech recogniser (eat/features/train_recognizer.py measures it), two for the supervisors
    (:data:`SUPERVISOR_THREADS`); Ray Train workers pass their ``threads_per_worker``.
    ``deterministic``: ``True`` raises on an operation without a deterministic implementation, ``"warn"`` only
    warns (``warn_only=True``: the Ray Train loops, whose backward passes include such operations). ``None`` leaves
    that setting as it is.

    Seeds are not set here: each trainer seeds its own initialisation and each step (part of its recipe).
    """
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled())
    if threads is not None:
        torch.set_num_threads(threads)
    if deterministic is not None:
        torch.use_deterministic_algorithms(bool(deterministic), warn_only=deterministic == "warn")
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(before[0])
        if deterministic is not None:
            torch.use_deterministic_algorithms(before[1], warn_only=before[2])
