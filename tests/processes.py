"""Live processes of this machine, for tests that check what a Ray session leaves behind; a Ray head that the
stage subprocesses of a test session attach to (:func:`start_ray_head`)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from eat.ray_runtime import ADDRESS_ENV
from eat.ray_train import read_state

REPO = Path(__file__).resolve().parent.parent
"""The checkout the tests run from: the stage subprocesses' working directory and ``PYTHONPATH``."""


def _processes() -> list[tuple[int, str]]:
    """(pid, command line) of every live process."""
    found = []
    for cmdline_file in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = cmdline_file.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        found.append((int(cmdline_file.parent.name), cmdline))
    return found


def processes_under(directory: Path) -> list[str]:
    """Command lines of live processes that mention ``directory`` (Ray's raylet, GCS, workers)."""
    return [cmdline for _, cmdline in _processes() if str(directory) in cmdline]


def in_fresh_process(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a new Python process (spawned: this one's environment, nothing else); its result.

    How tests start a Ray Train run from test code, as a stage script runs one from its own process: a pytest
    worker that was a Ray driver before (another test's Ray session) had its next Ray Train run cancelled before it
    started ("TrainController ... cancelled"), failing whichever test xdist placed second.
    """
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args, **kwargs).result()


# ---- Ray for the stage subprocesses of the slow tests ------------------------------------------------------------

# Ray Train's controller takes a worker's checkpoint report off its one-place queue when it polls the workers, every
# RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default), and the worker's next report waits for that: with the test
# fixtures' checkpoints every 2 steps of about 0.1 s, training ran at one step a second, mostly waiting. Polled every
# 0.2 s, the same steps and checkpoints run and are saved, only collected sooner (a poll that overruns is a missed
# health check, tolerated for 10 minutes). Ray Train hands the variable on from the driver to its controller, so it
# goes in the stage's environment, local Ray or not.
RAY_TRAIN_FAST_POLL = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}

# A raylet starts idle Python workers ahead of demand for each new driver (about 0.6 s of CPU each). A training
# stage's Ray Train run never uses them (it starts its controller, helper and worker actors in processes of their own),
# so on the test suite's 2 busy cores they are pure cost: off in the test heads and the stages' own local Rays.
RAY_NO_PRESTART = {"RAY_enable_worker_prestart": "0", "RAY_prestart_worker_first_driver": "0"}

_HEAD_READY = "Ray runtime started."
_HEAD_START_S = 120        # bound on `ray start --head` (seconds on a loaded 2-core machine)
_HEAD_STOP_S = 30          # bound on the exit of its processes once killed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Runs argv[1:] in its place once the kernel is told to kill it when its parent (the pytest process) dies
# (PR_SET_PDEATHSIG, Linux; it survives the exec): a pytest killed outright leaves no Ray head behind.
_DIE_WITH_PARENT = """\
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
os.execv(sys.argv[1], sys.argv[1:])
"""


@dataclass
class RayHead:
    """A Ray head on this machine, its state in a private short temp dir (see :func:`start_ray_head`).

    :attr:`env` is what a stage subprocess needs to attach to it (``EAT_RAY_ADDRESS``) instead of starting a local
    Ray of its own; the stage's ``ray_session`` then connects and, on exit, disconnects, leaving the head running.
    """

    address: str
    temp_dir: Path
    process: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)

    def processes(self) -> list[str]:
        """Process titles (``ray::TrainController``, ``ray::IDLE``, …) of the Ray workers its raylet runs now."""
        raylets = [pid for pid, cmdline in _processes() if "raylet/raylet" in cmdline and str(self.temp_dir) in cmdline]
        found = []
        for pid, cmdline in _processes():
            try:
                parent = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):    # the process ended while we looked
                continue
            if parent in raylets:
                found.append(cmdline.strip())
        return found

    def wait_until_gone(self, *titles: str, timeout_s: float = 60) -> None:
        """Wait until none of the head's workers has a title containing one of ``titles`` (what a killed driver left
        running, which the head ends once it sees the driver gone); fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while left := [p for p in self.processes() if any(t in p for t in titles)]:
            assert time.monotonic() < deadline, f"the Ray head still runs {left} {timeout_s} s after their driver died"
            time.sleep(0.1)

    def stop(self) -> None:
        """Kill ``ray start --block`` (its Ray processes share its fate: the kernel kills them with it, and the
        workers exit with their raylet), and whatever of its session is left; remove the temp dir. A graceful stop
        (SIGTERM) can hang for half a minute, and nothing in the temp dir is kept anyway."""
        try:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            deadline = time.monotonic() + _HEAD_STOP_S
            while processes_under(self.temp_dir) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_ray_head(num_cpus: int = 2, cwd: Path | None = None) -> RayHead:
    """``ray start --head --block`` with ``num_cpus`` CPUs, its workers in ``cwd``; returns once it accepts drivers.

    Started in a session of its own (stopped as a process group) on free ports (the GCS's picked by Ray, those
    with a fixed default here), so two pytest-xdist workers each run their own head side by side; its temp
    dir (sessions, sockets, the address file) is a fresh one under /tmp, short enough for Ray's socket paths.
    ``cwd`` (default: that temp dir, so nothing a task might write relative to the cwd lands in the checkout) is the
    working directory of the head and so of every Ray worker it starts, whatever the driver's: a stage that hands
    its tasks paths relative to the project (the DVC stages do: data/synth/…) needs the head started in the project.
    Token authentication is off on both sides (``RAY_AUTH_MODE=disabled``): ``ray start`` turns it on when
    ``~/.ray/auth_token`` exists (a local ``ray.init`` writes one), while a driver connecting to an explicit address
    does not, and would be refused.
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="eat-rh-"))
    auth = {"RAY_AUTH_MODE": "disabled"}
    env = {**os.environ, **auth, **RAY_NO_PRESTART, "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = temp_dir / "head.log"
    args = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--num-cpus={num_cpus}",
            "--num-gpus=0", "--port=0", f"--temp-dir={temp_dir}",
            "--include-dashboard=false", f"--dashboard-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
            "--disable-usage-stats"]
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", _DIE_WITH_PARENT, *args], cwd=cwd or temp_dir, env=env,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    head = RayHead("", temp_dir, process)
    try:
        deadline = time.monotonic() + _HEAD_START_S
        address_file = temp_dir / "ray_current_cluster"
        while _HEAD_READY not in log.read_text(errors="replace") or not address_file.is_file():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`{' '.join(args)}` did not start a Ray head (exit code {process.poll()}):\n"
                                   f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        head.address = address_file.read_text().strip()
        head.env = {ADDRESS_ENV: head.address, **auth}
    except BaseException:
        head.stop()
        raise
    return head


def stage_env(ray_env: dict[str, str] | None = None) -> dict[str, str]:
    """A stage subprocess's environment: the project on ``PYTHONPATH``, no usage stats, Ray Train's fast health
    poll, and with ``ray_env`` (``ray_head.env``) the session's Ray head instead of a local Ray of its own."""
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO), **RAY_TRAIN_FAST_POLL,
            **RAY_NO_PRESTART, **(ray_env or {})}


def run_stage(args: list[str], ray_env: dict[str, str] | None = None) -> str:
    """Run a stage command from the repository root to the end; fail with its output's tail unless it exits 0."""
    proc = subprocess.run(args, cwd=REPO, env=stage_env(ray_env), capture_output=True, text=True, check=False,
                          timeout=600)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def kill_at_first_checkpoint(args: list[str], storage: Path, ray_head: RayHead) -> None:
    """Start a training stage on ``ray_head``, SIGKILL its process group once a Ray Train checkpoint is in
    ``storage``, and wait until the head has ended the dead driver's training (it must stay fit for the rerun)."""
    proc = subprocess.Popen(args, cwd=REPO, env=stage_env(ray_head.env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not list(storage.glob("checkpoint_*/state.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    ray_head.wait_until_gone("TrainController", "RayTrainWorker")
    assert list(storage.glob("checkpoint_*/state.pt")), "no checkpoint was written before the kill"


def drop_newest_checkpoint(run: Path) -> int:
    """Delete the newest Ray Train checkpoint of ``run`` (what a run killed before writing it leaves); the step of
    the newest one left. Ray's run record beside the checkpoint folders is not one."""
    steps = {folder: read_state(folder)["step"] for folder in run.glob("checkpoint_*") if folder.is_dir()}
    newest = max(steps, key=steps.get)
    shutil.rmtree(newest)
    return max(step for folder, step in steps.items() if folder != newest)


def resumed_step(output: str, steps: int) -> int:
    """The step a rerun's log says it resumed from; fail unless it is strictly inside (0, ``steps``)."""
    resumed = re.search(r"resuming from .* \(step (\d+) of (\d+)\)", output)
    assert resumed, output[-2000:]
    step = int(resumed.group(1))
    assert 0 < step < steps, "the kill came after training had finished"
    return step
