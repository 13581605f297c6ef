"""Wall and machine-wide CPU seconds of each stage of the micro-profile DAG, run as the end-to-end test runs it.

Usage, from the repository root: ``git clone -q . /tmp/micro && ln -s "$PWD/.venv" /tmp/micro/.venv`` then
``PYTHONPATH=. python docs/probes/test_suite/micro_dag_cpu.py /tmp/micro out.json``. The copy gets the micro profile
and one Ray head (as ``tests/test_pipeline_e2e.py`` starts it); ``dvc repro`` runs there, and at each "Running stage"
line the busy CPU time of the whole machine (``/proc/stat``: all but idle and iowait) is read, so a stage's CPU
seconds include its Ray processes. Run it alone on the machine: anything else running is counted too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from eat.config import apply_profile
from tests.processes import RAY_TRAIN_FAST_POLL, start_ray_head


def busy_cpu_seconds() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def main(repo: Path, out: Path) -> None:
    apply_profile(repo / "configs" / "micro.yaml", repo / "params.yaml")
    head = start_ray_head(cwd=repo)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", **RAY_TRAIN_FAST_POLL, **head.env}
    marks, t0, b0 = [], time.time(), busy_cpu_seconds()
    try:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("dvc")), "repro"], cwd=repo, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            if found := re.match(r"Running stage '([^']+)'", line):
                marks.append((found.group(1), time.time() - t0, busy_cpu_seconds() - b0))
        proc.wait()
        marks.append(("END", time.time() - t0, busy_cpu_seconds() - b0))
    finally:
        head.stop()
    rows = [{"stage": a[0], "wall_s": round(b[1] - a[1], 1), "cpu_s": round(b[2] - a[2], 1)}
            for a, b in zip(marks, marks[1:], strict=False)]
    out.write_text(json.dumps({"returncode": proc.returncode, "total_wall_s": round(marks[-1][1], 1),
                               "total_cpu_s": round(marks[-1][2], 1), "stages": rows}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
