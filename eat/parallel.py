"""Map a function over clips on Ray, keeping going when single clips fail.

Every per-clip stage (normalise, crop/align, features, pose) uses :func:`map_clips`:
Ray tasks on the session from :mod:`eat.ray_runtime` (local by default, a cluster
when ``EAT_RAY_ADDRESS`` or ``ray.address`` says so), at most ``2 × CPUs`` tasks in
flight so peak memory is bounded by the per-clip working set, a progress bar, and
per-item outcomes: an exception in one clip becomes that clip's ``error`` (to be
quarantined by the caller), never the end of the run. A task whose worker or node dies
(a system failure, not an exception in ``fn``) is retried up to :data:`SYSTEM_RETRIES`
times, on another node if its own is gone. ``workers=1`` runs in-process, without Ray,
for debugging and tiny inputs.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tqdm import tqdm

from eat.ray_runtime import ray_session

T = TypeVar("T")
R = TypeVar("R")

SYSTEM_RETRIES = 3
"""Reruns of a clip's task after its worker or node died; Ray never retries an exception raised by ``fn``."""


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    item: T
    value: R | None
    error: str | None  # "<ExceptionType>: message" when fn raised


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _call(fn: Callable[[T], R], item: T) -> tuple[R | None, str | None]:
    try:
        return fn(item), None
    except Exception as exc:  # noqa: BLE001 — one bad clip must not stop the stage
        return None, _describe(exc) + ("" if isinstance(exc, ValueError) else f"\n{traceback.format_exc(limit=3)}")


def map_clips(fn: Callable[[T], R], items: Sequence[T], *, desc: str, workers: int = 0,
              address: str | None = None, num_cpus_per_task: float = 1.0) -> list[Outcome[T, R]]:
    """Apply ``fn`` to every item; results in input order. ``workers`` 0 = all CPUs of the Ray session."""
    if not items:
        return []
    if workers == 1:
        return [Outcome(item, *_call(fn, item)) for item in tqdm(items, desc=desc, unit="clip", mininterval=10)]

    import ray  # local: Ray is heavy and one worker runs without it

    with ray_session(address=address, num_cpus=workers or None):
        remote = ray.remote(num_cpus=num_cpus_per_task, max_retries=SYSTEM_RETRIES)(_call)
        fn_ref = ray.put(fn)
        limit = max(2, 2 * int(ray.available_resources().get("CPU", 1)))
        pending: dict[Any, int] = {}
        results: list[tuple[R | None, str | None] | None] = [None] * len(items)
        next_index = 0
        with tqdm(total=len(items), desc=desc, unit="clip", mininterval=10) as bar:
            while next_index < len(items) or pending:
                while next_index < len(items) and len(pending) < limit:
                    pending[remote.remote(fn_ref, items[next_index])] = next_index
                    next_index += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        results[index] = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker died more than SYSTEM_RETRIES times
                        results[index] = (None, f"worker failed: {_describe(exc)}")
                    bar.update(1)
    return [Outcome(item, *result) for item, result in zip(items, results, strict=True)]  # type: ignore[misc]
