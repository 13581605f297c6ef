"""Probe: seconds per step of the lip-sync expert's training in-process vs in a Ray Train worker.

    python docs/probes/ray_overhead/probe.py inproc 400
    RAY_TRAIN_HEALTH_CHECK_INTERVAL_S=2.0 python docs/probes/ray_overhead/probe.py ray 400
    PROBE_RENICE=19 python docs/probes/ray_overhead/probe.py ray 400

Same data, config and seed as the stage (params.yaml), fewer steps; prints one JSON line with the median of the
log rows' seconds_per_step after the first row (warm-up).
"""

import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from eat import paths
from eat.config import load_params
from eat.io.reproducible import reproducible_torch
from eat.sync import train as sync_train

mode, steps = sys.argv[1], int(sys.argv[2])
params = load_params("params.yaml")
cfg = params.sync_expert.model_copy(update={"steps": steps, "log_every": 50, "checkpoint_every": 100})
table = sync_train.sync_table(paths.POSE_TABLE, paths.AUDIO_TABLE)
train, _ = sync_train.usable(sync_train.load_sync_clips(table[table.split == "train"], cfg.face_size),
                             sync_train.min_train_frames(cfg))
trainer = sync_train.Trainer(cfg, train[0].mel.shape[1], params.seed)
start = time.perf_counter()


def inproc(trainer, train):
    from eat import ray_train
    with reproducible_torch(threads=sync_train.SUPERVISOR_THREADS, deterministic=True):
        trainer.model.train()
        log = ray_train.StepLog(trainer.log)
        for step in range(steps):
            log.add(trainer.train_step(train, step))
            if (step + 1) % cfg.log_every == 0:
                log.close_row(step + 1)
    return trainer.log


if mode == "inproc":
    rows = inproc(trainer, train)
elif mode == "inproc_ray":     # in the driver, a local Ray running beside it
    from eat.ray_runtime import ray_session
    with ray_session(params.ray.address, num_cpus=2):
        rows = inproc(trainer, train)
elif mode == "task":           # in a plain Ray task of 2 CPUs (no Ray Train)
    import ray

    from eat.ray_runtime import ray_session
    with ray_session(params.ray.address, num_cpus=2):
        rows = ray.get(ray.remote(num_cpus=2)(inproc).remote(trainer, train))
else:
    if os.environ.get("PROBE_RENICE"):     # every Ray process but the training worker (and this driver) at nice N
        def renice(level: int = int(os.environ["PROBE_RENICE"])) -> None:
            while True:
                for proc in psutil.process_iter(["pid", "cmdline", "nice"]):
                    line = " ".join(proc.info["cmdline"] or [])
                    if ("ray" in line and "RayTrainWorker" not in line and proc.info["nice"] != level) \
                            or proc.pid == os.getpid():
                        with contextlib.suppress(psutil.Error):
                            proc.nice(level)
                time.sleep(1)
        threading.Thread(target=renice, daemon=True).start()
    storage = Path(tempfile.mkdtemp(prefix="ray_probe_"))
    digest = sync_train.run_digest(params.seed, cfg, train)
    state = sync_train.fit(trainer, train, storage, params.ray, digest)
    rows = state["log"]
    shutil.rmtree(storage, ignore_errors=True)
wall = time.perf_counter() - start
per_step = [r["seconds_per_step"] for r in rows[1:]]
print(json.dumps({"mode": mode, "steps": steps, "median_s_per_step": statistics.median(per_step),
                  "rows": per_step, "wall_s": round(wall, 1), "last_loss": rows[-1]["total"]}))
