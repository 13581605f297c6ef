"""Run one DVC stage as ``dvc repro --single-item <stage>``, streaming its output line by line."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from eat.orchestration.dag import DvcBusy
from eat.ray_runtime import ADDRESS_ENV

Outcome = Literal["ran", "restored", "cached"]
"""``ran``: the command ran; ``restored``: DVC restored the outputs from its run-cache; ``cached``: up to date."""

ERROR_TAIL_LINES = 20
"""How many of a failed stage's last stderr lines go into the error (and so into the UI)."""

_LOCK_HELD = "Unable to acquire lock"  # dvc/lock.py, printed when another DVC process holds the repo
_OUTPUT_BUSY = "is busy, it is being blocked by"  # dvc/rwlock.py: another DVC process runs a stage with this path
_RESTORED = "is cached - skipping run"  # dvc/stage/cache.py
_UNCHANGED = "didn't change, skipping"  # dvc/stage/__init__.py
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours (Ray's worker prefixes), cursor moves


class StageFailed(RuntimeError):
    """The stage's own command failed: a real error, not retried; the message ends with its stderr."""


@dataclass(frozen=True)
class StageRun:
    """What ``dvc repro`` did with one stage, and how long it took."""

    stage: str
    outcome: Outcome
    seconds: float


def dvc_executable() -> str:
    """The ``dvc`` of this interpreter's environment (the project's .venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("dvc")
    found = str(beside) if beside.exists() else shutil.which("dvc")
    if not found:
        raise RuntimeError(f"dvc not found beside {sys.executable} nor on PATH: run `make install` in the project")
    return found


def stage_env(ray_address: str | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a stage runs in: ours, with this venv first on PATH (stages call ``python``),
    unbuffered output (so lines stream as printed), DVC analytics off, and ``EAT_RAY_ADDRESS``
    when a Ray cluster is given (read by :func:`eat.ray_runtime.ray_session`)."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env["DVC_NO_ANALYTICS"] = "1"
    if ray_address:
        env[ADDRESS_ENV] = ray_address
    return env


def _pump(stream: IO[str], name: str, lines: queue.Queue[tuple[str, str | None]]) -> None:
    for line in stream:
        lines.put((name, _ANSI_ESCAPE.sub("", line.rstrip("\n"))))
    lines.put((name, None))


def _follow(proc: subprocess.Popen[str], on_line: Callable[[str, str], None]) -> tuple[int, deque[str], set[str]]:
    """Pass the process's lines to ``on_line`` until it exits: exit code, last stderr lines, DVC markers seen."""
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    pumps = [threading.Thread(target=_pump, args=(s, n, lines), daemon=True)
             for s, n in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
    for pump in pumps:
        pump.start()
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    said: set[str] = set()
    open_streams = len(pumps)
    while open_streams:
        stream, line = lines.get()
        if line is None:
            open_streams -= 1
            continue
        if stream == "stderr":
            tail.append(line)
        said.update(marker for marker in (_LOCK_HELD, _OUTPUT_BUSY, _RESTORED, _UNCHANGED) if marker in line)
        on_line(stream, line)
    return proc.wait(), tail, said


def _stop(proc: subprocess.Popen[str], grace_s: float = 10.0) -> None:
    """SIGTERM the process group we started (dvc and the stage's command), SIGKILL it after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace_s)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def repro_stage(root: Path, name: str, env: Mapping[str, str],
                on_line: Callable[[str, str], None]) -> StageRun:
    """Run ``dvc repro --single-item name`` in ``root``; call ``on_line(stream, line)`` for each output line.

    ``on_line`` is called from this thread, as lines arrive (stream is ``"stdout"`` or
    ``"stderr"``; carriage returns end lines too, so progress bars come as lines; terminal
    colour codes are removed). Raises :class:`DvcBusy` if the repository is locked by another DVC process
    (transient) and :class:`StageFailed`, with the last stderr lines, if the stage fails.
    """
    start = time.perf_counter()
    cmd = [dvc_executable(), "repro", "--single-item", name]
    # A session of its own, so that an interrupted flow can stop dvc and the stage's command together.
    proc = subprocess.Popen(cmd, cwd=root, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", bufsize=1, start_new_session=True)
    try:
        code, tail, said = _follow(proc, on_line)
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C, a cancelled flow run): stop the stage too
            _stop(proc)
    seconds = time.perf_counter() - start
    if code != 0 and said & {_LOCK_HELD, _OUTPUT_BUSY}:
        raise DvcBusy(f"stage {name!r}: another DVC process holds the lock of {root}")
    if code != 0:
        raise StageFailed(
            f"stage {name!r} failed (`dvc repro --single-item {name}` exited with {code} after {seconds:.0f} s).\n"
            f"Last lines of its stderr:\n" + "\n".join(tail) + "\n"
            "Fix the cause and run the flow again: stages that finished are cached by DVC and are not re-run.")
    outcome: Outcome = "restored" if _RESTORED in said else "cached" if _UNCHANGED in said else "ran"
    return StageRun(stage=name, outcome=outcome, seconds=seconds)
