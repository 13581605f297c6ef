"""The one place that starts or connects to Ray.

Every stage that uses Ray does so inside :func:`ray_session`, so where the work runs is a
deployment choice, not code: by default a private local Ray is started for the stage
(``num_cpus`` workers, no dashboard, usage stats off, state under the project's ``.ray/``)
and shut down when the stage ends; with ``EAT_RAY_ADDRESS`` set (the Prefect flow sets it
from its ``ray_address`` parameter) the stage connects to an existing cluster instead and
leaves it running. Addresses are Ray's own: ``auto`` (the cluster ``ray start --head``
started on this machine), ``host:6379`` (a head node's GCS) or ``ray://host:10001`` (Ray
Client).

A local Ray starts its workers at normal priority (``RAY_worker_niceness=0``, where Ray's default is nice 15): a
training worker runs 2 OpenMP threads on the 2 cores, and at nice 15 the thread that shares a core with any
ordinary process gets a few percent of it while every parallel region waits for that thread; one busy shell
beside a stage was measured to slow a training step 40-fold (0.36 s → 13.9 s).

Ray Train's controller looks at its workers every ``RAY_TRAIN_HEALTH_CHECK_INTERVAL_S`` (Ray's default 2 s;
0.2 s here, as in the tests): a finished run was measured to return 5.0 s after its worker's last report with the
default and 1.0 s with 0.2 s, and the DAG has seven Ray Train runs (the lip-sync expert, Emotion-FAN, two latent,
two A2ET, and the adaptation variants in one).

GPU work asks for GPUs only where there are some (:func:`remote_options`), so the same
stage code runs on this CPU-only machine and on a GPU cluster.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WORKER_NICENESS_ENV = "RAY_worker_niceness"
"""Ray's setting for its workers' nice value, read when a local Ray starts (see the module docstring)."""

TRAIN_POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"
"""Ray Train's controller poll interval in seconds, read by the controller process (see the module docstring)."""

ADDRESS_ENV = "EAT_RAY_ADDRESS"
"""Environment variable naming the Ray cluster stages connect to (unset or ``local``: start one)."""

LOCAL = "local"

REPO = Path(__file__).resolve().parent.parent

# Ray puts unix sockets at <temp dir>/session_<date>_<time>_<usec>_<pid>/sockets/plasma_store;
# the kernel limits a socket path to 107 bytes and the part after the temp dir takes up to 64.
_MAX_TEMP_DIR_CHARS = 107 - 64

log = logging.getLogger(__name__)


def resolve_address(address: str | None = None) -> str:
    """The Ray address to use: ``$EAT_RAY_ADDRESS``, else the argument, else ``"local"``.

    The argument is the configured address (``ray.address`` of params.yaml); the environment is the
    deployment's choice (a flow's ``ray_address``, a user's shell) and overrides it.
    """
    return (os.environ.get(ADDRESS_ENV) or address or LOCAL).strip()


def ray_temp_dir(project: Path | None = None) -> Path:
    """Where a local Ray keeps its sessions: ``<project>/.ray``, or a short ``/tmp`` path.

    Ray's unix sockets live under this directory and their paths must stay under 107 bytes,
    so a project at a long path gets ``<tmp>/eat-ray-<hash of the project path>`` instead
    (one per project, so two checkouts still never share Ray state).
    """
    project = project or REPO
    inside = project / ".ray"
    if len(str(inside)) <= _MAX_TEMP_DIR_CHARS:
        return inside
    digest = hashlib.sha1(str(project).encode()).hexdigest()[:10]
    short = Path(tempfile.gettempdir()) / f"eat-ray-{digest}"
    log.warning("project path %s is too long for Ray's socket paths; local Ray state goes to %s", project, short)
    return short


# Ray-internal loggers that are noisy at INFO/WARNING without helping a user: Ray Train logs every
# report() call, and its placement-group cleaner warns every few seconds that the state API (part of
# the dashboard, which stages do not start) is unavailable.
_QUIET_LOGGERS = {
    "ray.train.v2._internal.execution.context": logging.WARNING,
    "ray.train.v2._internal.execution.controller.placement_group_cleaner": logging.ERROR,
}


def quiet_worker_logs() -> None:
    """``worker_process_setup_hook`` of every Ray worker the stages start: silence :data:`_QUIET_LOGGERS`."""
    for name, level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


_RUNTIME_ENV = {"worker_process_setup_hook": "eat.ray_runtime.quiet_worker_logs"}


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Run the body with Ray initialised; shut down on exit only what this call started.

    ``address``: the configured address; see :func:`resolve_address`. ``num_cpus`` sizes a local Ray (default: all
    cores) and is ignored when connecting to a cluster, whose size its own nodes decide.
    If Ray is already initialised in this process (an enclosing session, or a caller's own
    ``ray.init``), that connection is reused and left alone.
    """
    import ray  # local: Ray is heavy; importing this module must stay cheap (every stage does)

    if ray.is_initialized():
        yield
        return
    target = resolve_address(address)
    # Ray reads this when its processes start; a user's explicit setting wins.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if target == LOCAL:
        os.environ.setdefault(WORKER_NICENESS_ENV, "0")
        os.environ.setdefault(TRAIN_POLL_ENV, "0.2")
        temp_dir = ray_temp_dir()
        temp_dir.mkdir(parents=True, exist_ok=True)
        ray.init(address=LOCAL, num_cpus=num_cpus, include_dashboard=False, _temp_dir=str(temp_dir),
                 runtime_env=_RUNTIME_ENV)
    else:
        try:
            ray.init(address=target, runtime_env=_RUNTIME_ENV)
        except ConnectionError as exc:
            if os.environ.get(ADDRESS_ENV):     # it won over ray.address (resolve_address)
                source = f"${ADDRESS_ENV}, which overrides ray.address"
                fix = f"fix ${ADDRESS_ENV}, or unset it to use ray.address"
            else:
                source = f"ray.address, ${ADDRESS_ENV} being unset"
                fix = f"or fix ray.address ({LOCAL}: a Ray on this machine)"
            raise ConnectionError(f"could not connect to the Ray cluster at {target!r} (from {source}): {exc}. "
                                  f"Start one with `ray start --head`, {fix}.") from exc
    try:
        yield
    finally:
        ray.shutdown()


def gpu_available() -> bool:
    """Whether GPU work can be scheduled: the connected Ray cluster has GPUs, else this machine has CUDA."""
    import ray  # local: see ray_session

    if ray.is_initialized():
        return ray.cluster_resources().get("GPU", 0) > 0
    import torch  # local: seconds to import, and the preprocessing stages that import this module never need it

    return torch.cuda.is_available()


def remote_options(num_gpus_if_cuda: float = 1.0, num_cpus: float = 1.0) -> dict[str, Any]:
    """Keyword arguments for ``.options(...)`` of a Ray task or actor: GPUs only where CUDA is present.

    A task that asks for a GPU on a cluster without one would wait forever, so the request
    is made only when :func:`gpu_available`; otherwise the work runs on CPUs.
    """
    return {"num_cpus": num_cpus, "num_gpus": num_gpus_if_cuda if gpu_available() else 0}
