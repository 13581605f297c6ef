"""A toy DVC project for the flow tests: the project's params and profiles, three trivial stages.

``prepare`` (reads ``seed``) → ``train`` (metrics JSON, a plot CSV; fails while ``train.yaml``
says ``lr: .nan``) → ``report`` (under reports/). Every command appends to
``counts/<stage>``, which DVC does not track, so a test can tell whether a command ran.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

DVC_YAML = """\
stages:
  prepare:
    cmd: python toy.py prepare
    deps: [toy.py]
    params: [seed]
    outs: [data/prepared.txt]
  train:
    cmd: python toy.py train
    deps: [toy.py, train.yaml, data/prepared.txt]
    outs: [reports/toy/model.txt]
    metrics:
      - reports/toy/metrics.json:
          cache: false
    plots:
      - reports/toy/loss.csv:
          cache: false
  report:
    cmd: python toy.py report
    deps: [toy.py, reports/toy/metrics.json]
    outs: [reports/toy/report.md]
"""

TOY_PY = """\
import json, math, sys, time
from pathlib import Path
import yaml

step = sys.argv[1]
Path("counts").mkdir(exist_ok=True)
with open(f"counts/{step}", "a") as counter:
    counter.write("x")
Path("data").mkdir(exist_ok=True)
Path("reports/toy").mkdir(parents=True, exist_ok=True)
if step == "prepare":
    sys.stdout.write("\\x1b[32mprepared\\x1b[0m 1/2\\rprepared 2/2\\n")  # a coloured progress bar
    Path("data/prepared.txt").write_text(f"seed {yaml.safe_load(open('params.yaml'))['seed']}\\n")
elif step == "train":
    lr = yaml.safe_load(open("train.yaml"))["lr"]
    for epoch in range(3):
        print(f"epoch {epoch} loss {1 / (epoch + 1):.3f}", flush=True)
        time.sleep(0.05)
    if math.isnan(lr):
        print("checking the learning rate", file=sys.stderr)
        sys.exit("loss is NaN: set a finite lr in train.yaml")
    Path("reports/toy/model.txt").write_text("w")
    Path("reports/toy/metrics.json").write_text(json.dumps({"loss": 0.333, "acc": {"top1": 0.9}}))
    Path("reports/toy/loss.csv").write_text("step,loss\\n0,1\\n1,0.5\\n2,0.333\\n")
else:
    Path("reports/toy/report.md").write_text("# toy report\\n")
"""


def make_toy_repo(root: Path, lr: str = "0.1") -> Path:
    """A git + DVC repository at ``root`` with the project's params.yaml and configs/ and the toy stages."""
    root.mkdir(parents=True)
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "configs", root / "configs")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "toy.py").write_text(TOY_PY)
    (root / "train.yaml").write_text(f"lr: {lr}\n")
    dvc = str(Path(sys.executable).with_name("dvc"))
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], [dvc, "config", "core.analytics", "false"]):
        subprocess.run(cmd, cwd=root, check=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    return root


def runs_of(root: Path, stage: str) -> int:
    """How many times the toy command of ``stage`` ran."""
    counter = root / "counts" / stage
    return len(counter.read_text()) if counter.exists() else 0
