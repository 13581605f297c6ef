"""CPU and wall seconds of one Ray Train run that does nothing: Ray's ``TorchTrainer`` against ``lean_torch_trainer``.

Usage, from the repository root: ``PYTHONPATH=. python docs/probes/test_suite/noop_fit_cpu.py [repeats]``. One Ray
head as the tests start it; each run is a fresh driver process (as a stage is) calling :func:`eat.ray_train.fit` on a
one-step loop, alternating the two trainers. CPU seconds are the whole machine's busy time (``/proc/stat``) over the
run and 3 s after it (the helper actors' exit), so run it alone on the machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time

from micro_dag_cpu import busy_cpu_seconds  # this folder is on sys.path when the script runs

from tests.processes import stage_env, start_ray_head

DRIVER = """
import os, sys
from pathlib import Path
import eat.ray_train as rt
from eat.config import load_params
if os.environ.get("PROBE_TORCH_TRAINER"):
    from ray.train.torch import TorchTrainer
    rt.lean_torch_trainer = lambda: TorchTrainer
def worker(config):
    import ray.train
    rt.report({"digest": config["digest"], "step": 1}, {"step": 1}, ray.train.get_context().get_world_rank())
rt.fit(worker, {}, storage=Path(sys.argv[1]), name="noop", digest="noop", steps=1, num_workers=1,
       threads_per_worker=1, ray=load_params("params.yaml").ray)
"""


def main(repeats: int) -> None:
    trainers = {"TorchTrainer": {"PROBE_TORCH_TRAINER": "1"}, "lean_torch_trainer": {}}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in trainers}
    head = start_ray_head()
    try:
        for _ in range(repeats):
            for name, extra in trainers.items():
                cpu, start = busy_cpu_seconds(), time.time()
                subprocess.run([sys.executable, "-c", DRIVER, tempfile.mkdtemp()], env={**stage_env(head.env), **extra},
                               check=True, capture_output=True)
                wall = time.time() - start
                time.sleep(3)
                runs[name].append((round(wall, 1), round(busy_cpu_seconds() - cpu, 1)))
    finally:
        head.stop()
    for name, values in runs.items():
        print(f"{name}: wall s {[w for w, _ in values]} (median {statistics.median(w for w, _ in values)}), "
              f"CPU s {[c for _, c in values]} (median {statistics.median(c for _, c in values)})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
