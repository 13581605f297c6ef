"""``make repro``: the whole DVC pipeline, with one view of a long run.

Before it starts, the run lists the stages it will run, each with its expected time from the last recorded
timings (``reports/timings.json``), and the total. Each stage then runs as ``dvc repro --single-item`` in DVC's
own order (:func:`eat.orchestration.dag.plan`), its output (progress bars included) passing straight through,
and a line after each stage gives the elapsed time and the estimate of what remains. The stage's wall time,
outcome and the CPU's instruction-set class are recorded in ``reports/timings.json`` as soon as it finishes,
so an interrupted run keeps what it measured.

A stage will run when ``dvc status`` reports a change of its own or when a stage upstream of it will run.

If another DVC process (a second ``make repro``, a ``dvc repro``, ``make flow``) holds the repository, the run
says so in one line on stderr and exits with status 1, keeping what it finished; the other run goes on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import networkx as nx
from dvc.lock import LockError
from dvc.repo import Repo

from eat.io.atomic import write_text_atomic
from eat.machine import cpu_kind
from eat.orchestration.dag import DvcBusy, plan, stage_address
from eat.orchestration.runner import StageFailed, repro_stage, stage_env
from eat.paths import TIMINGS


def will_run(root: Path) -> dict[str, bool]:
    """Stage address → whether ``dvc repro`` would run it now (changed itself, or downstream of a stage that will)."""
    with Repo(str(root)) as repo:
        graph = repo.index.graph                  # edges point from a stage to the stages it depends on
        name = {s: stage_address(s, repo.root_dir) for s in graph}
        by_status = {s.addressing: name[s] for s in graph}   # status keys are addresses relative to the cwd
        changed = {by_status[k] for k in repo.status() if k in by_status}
        upstream = {name[s]: {name[u] for u in nx.descendants(graph, s)} for s in graph if s.cmd}
    return {stage: stage in changed or bool(up & changed) for stage, up in upstream.items()}


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def load_timings(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text()).get("stages", {}) if path.is_file() else {}


def record(path: Path, stage: str, seconds: float, outcome: str) -> None:
    """Add one stage's wall time to the timings file (atomically)."""
    stages = load_timings(path)
    stages[stage] = {"seconds": round(seconds, 1), "outcome": outcome, "cpu": cpu_kind(),
                     "finished": datetime.now(UTC).isoformat(timespec="seconds")}
    write_text_atomic(path, json.dumps({"note": "wall time of each stage's last run by make repro (2 CPU cores "
                                                "unless the cpu field says otherwise)", "stages": stages},
                                       indent=2) + "\n")


def _busy(why: str) -> int:
    print(f"make repro: {why}; this run stops here (what it finished is kept): run make repro again once the "
          "other run has finished", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".")
    parser.add_argument("--timings", default=str(TIMINGS))
    args = parser.parse_args(argv)
    root, timings_path = Path(args.repo).resolve(), Path(args.repo) / args.timings
    try:
        stages = plan(root)
        todo = will_run(root)
    except LockError as err:  # `dvc status` meets the lock of a stage another DVC process is running
        return _busy(f"another DVC process is running in {root} ({' '.join(str(err).split())})")
    known = load_timings(timings_path)
    expected = {s.name: (known.get(s.name) or {}).get("seconds") for s in stages if todo.get(s.name)}
    if not expected:
        print("make repro: every stage is up to date (dvc status is clean)")
        return 0
    total, untimed = sum(v for v in expected.values() if v), sum(1 for v in expected.values() if not v)
    estimate = f"expected ≈ {_clock(total)} from the last recorded timings ({args.timings})" + (
        f", {untimed} stage(s) never timed" if untimed else "")
    print(f"make repro: {len(expected)} of {len(stages)} stages will run on this {cpu_kind()} CPU; {estimate}")
    for name, seconds in expected.items():
        print(f"  {name:32s} {_clock(seconds)}")
    sys.stdout.flush()
    start, env = time.perf_counter(), stage_env()
    remaining = dict(expected)
    for i, name in enumerate(expected, 1):
        try:
            run = repro_stage(root, name, env, lambda _stream, line: print(line, flush=True))
        except DvcBusy as err:
            return _busy(str(err))
        except StageFailed as err:
            print(f"make repro: {err}", file=sys.stderr)
            return 1
        record(timings_path, name, run.seconds, run.outcome)
        remaining.pop(name)
        left = sum(v for v in remaining.values() if v)
        unknown = sum(1 for v in remaining.values() if not v)
        print(f"[{i}/{len(expected)}] {name} {run.outcome} in {_clock(run.seconds)}; elapsed "
              f"{_clock(time.perf_counter() - start)}, remaining ≈ {_clock(left)}"
              + (f" + {unknown} stage(s) never timed" if unknown else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
