"""``make seeds`` on a toy git + DVC project: two seeds as DVC experiments, one table with mean/min/max/pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eat.orchestration.seeds import (
    SeedRun,
    collect_runs,
    default_seeds,
    experiments_by_name,
    main,
    markdown,
    measured_by,
    run_sweep,
    seed_table,
)
from eat.orchestration.verify import MISSING
from tests.flow_toy import TOY_PY, make_toy_repo

GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}

# The toy's train stage reads the seed (a params key of it), its metrics depend on it: top1 = 0.9 + (seed % 10)
# / 100, loss = 0.3 + (seed % 10) / 100. The committed seed (20231002) gives 0.92 and 0.32, seed 1 0.91 / 0.31.
CONSTANT = 'json.dumps({"loss": 0.333, "acc": {"top1": 0.9}})'
BY_SEED = ('json.dumps({"loss": round(0.3 + s / 100, 4), "acc": {"top1": round(0.9 + s / 100, 4)}}) '
           'if (s := yaml.safe_load(open("params.yaml"))["seed"] % 10) is not None else ""')
TRAIN_DEPS = "    deps: [toy.py, train.yaml, data/prepared.txt]\n"

CRITERIA = """\
seeds:
  param: seed
  targets: [train]
  criteria:
    - {name: top-1 at least 0.9, file: reports/toy/metrics.json, path: acc.top1, min: 0.9}
    - {name: top-1 at least 0.915, file: reports/toy/metrics.json, path: acc.top1, min: 0.915}
    - {name: loss near the committed one, file: reports/toy/metrics.json, path: loss, committed_abs: 0.05}
    - {name: top-1 over loss, file: reports/toy/metrics.json, ratio: [acc.top1, loss], min: 2.5}
    - {name: top-1 beats loss, file: reports/toy/metrics.json, greater: acc.top1, than: loss, margin: 0.5}
    - {name: loss (reported), file: reports/toy/metrics.json, path: loss}
"""


def _env() -> dict[str, str]:
    return {**os.environ, **GIT_ID, "DVC_NO_ANALYTICS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(root: Path, *cmd: str) -> None:
    subprocess.run(list(cmd), cwd=root, check=True, env=_env(), capture_output=True)


def _queue_workers(root: Path) -> list[int]:
    """DVC's queue workers (daemons it spawned) still running in ``root``."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"queue-worker" in (proc / "cmdline").read_bytes() and Path(os.readlink(proc / "cwd")) == root:
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.fixture
def toy(tmp_path, monkeypatch) -> Path:
    for key, value in GIT_ID.items():
        monkeypatch.setenv(key, value)     # DVC commits each experiment
    root = make_toy_repo(tmp_path / "toy")
    assert TOY_PY.count(CONSTANT) == 1
    (root / "toy.py").write_text(TOY_PY.replace(CONSTANT, BY_SEED))
    dvc_yaml = (root / "dvc.yaml").read_text()
    assert dvc_yaml.count(TRAIN_DEPS) == 1
    (root / "dvc.yaml").write_text(dvc_yaml.replace(TRAIN_DEPS, TRAIN_DEPS + "    params: [seed]\n"))
    (root / ".gitignore").write_text("counts/\n")
    dvc = str(Path(sys.executable).with_name("dvc"))
    _run(root, dvc, "repro", "-q")
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-qm", "committed run")
    assert json.loads((root / "reports/toy/metrics.json").read_text()) == {"loss": 0.32, "acc": {"top1": 0.92}}
    yield root
    deadline = time.monotonic() + 60
    while _queue_workers(root) and time.monotonic() < deadline:   # DVC's worker exits once the queue is empty
        time.sleep(0.5)


def test_two_seeds_as_dvc_experiments_make_one_table(toy, tmp_path, capfd):
    config = tmp_path / "verify.yaml"
    config.write_text(CRITERIA)
    code = main(["--repo", str(toy), "--config", str(config), "--seeds", "1,2"])
    out = capfd.readouterr().out                           # ours and DVC's (its subprocesses write to the fd)
    assert code == 1, out                                   # "top-1 at least 0.915" fails at seed 1
    assert "exp run --queue -S seed=1 -n seed1-" in out and "exp run --run-all -j 1" in out
    assert out.count("Running stage 'train'") == 2
    assert "Running stage 'prepare'" not in out, "--single-item: the seed re-runs the targets, not their upstream"

    table = json.loads((toy / "reports/seeds/table.json").read_text())
    assert table["seeds"] == [1, 2] and table["targets"] == ["train"]
    assert {s: e["state"] for s, e in table["experiments"].items()} == {"1": "success", "2": "success"}
    rows = {r["name"]: r for r in table["rows"]}
    top1 = rows["top-1 at least 0.9"]
    assert top1["values"] == {"1": 0.91, "2": 0.92}
    assert (top1["mean"], top1["min"], top1["max"], top1["pass"]) == (pytest.approx(0.915), 0.91, 0.92, True)
    assert rows["top-1 at least 0.915"]["pass"] is False and rows["top-1 at least 0.915"]["failed_seeds"] == [1]
    assert rows["loss near the committed one"]["committed"] == 0.32 and rows["loss near the committed one"]["pass"]
    assert rows["top-1 over loss"]["min"] == pytest.approx(0.92 / 0.32) and rows["top-1 over loss"]["pass"]
    assert rows["top-1 beats loss"]["values"] == {"1": pytest.approx(0.6), "2": pytest.approx(0.6)}
    assert rows["loss (reported)"]["pass"] is None and table["all_pass"] is False

    md = (toy / "reports/seeds/table.md").read_text()
    assert md.splitlines()[0] == "| metric | criterion | seed 1 | seed 2 | mean | min | max | pass/fail |"
    assert "| top-1 at least 0.9 | ≥ 0.9 | 0.91 | 0.92 | 0.915 | 0.91 | 0.92 | pass |" in md
    assert "| FAIL (seed 1) |" in md and "within ±0.05 of committed 0.32" in md

    shown = subprocess.run([str(Path(sys.executable).with_name("dvc")), "exp", "show", "--json"], cwd=toy,
                           env=_env(), capture_output=True, text=True, check=True)
    found = experiments_by_name(json.loads(shown.stdout))
    assert {table["experiments"][s]["name"] for s in ("1", "2")} <= set(found), "the experiments stay in the repo"
    assert json.loads((toy / "reports/toy/metrics.json").read_text())["acc"]["top1"] == 0.92, "workspace untouched"


def test_a_failed_experiment_fails_every_judged_row(tmp_path):
    ok = SeedRun(1, "seed1-x", "success", {"m.json": {"acc": 0.95}})
    failed = SeedRun(2, "seed2-x", "failed", {})
    criteria = [{"name": "acc", "file": "m.json", "path": "acc", "min": 0.9},
                {"name": "acc (reported)", "file": "m.json", "path": "acc"}]
    table = seed_table([ok, failed], criteria, lambda file: MISSING)
    acc, reported = table["rows"]
    assert acc["values"] == {"1": 0.95, "2": None} and acc["pass"] is False and acc["failed_seeds"] == [2]
    assert (acc["mean"], acc["min"], acc["max"]) == (0.95, 0.95, 0.95)
    assert reported["pass"] is None and table["all_pass"] is False
    assert "seed 2 (seed2-x): failed" in markdown(table)


def test_only_criteria_on_the_targets_own_metrics_are_judged():
    """An experiment carries its baseline's copy of the other stages' metrics: the same at every seed."""
    criteria = [{"name": "acc", "file": "a.json", "path": "x", "min": 0.9},
                {"name": "b beats a", "greater": {"file": "b.json", "path": "x"},
                 "than": {"file": "a.json", "path": "x"}},
                {"name": "other", "file": "c.json", "path": "x"}]
    kept, unmeasured = measured_by(criteria, {"a.json", "a.csv"})
    assert [c["name"] for c in kept] == ["acc"] and unmeasured == ["b beats a", "other"]
    table = seed_table([SeedRun(1, "seed1-x", "success", {"a.json": {"x": 0.95}})], kept, lambda file: MISSING)
    table["not_measured"] = unmeasured
    assert table["all_pass"] and "Not measured (no target writes their file): b beats a; other." in markdown(table)


def test_default_seeds_start_with_the_params_seed(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 2\n")
    assert default_seeds(tmp_path, 3) == [2, 1, 3]
    (tmp_path / "params.yaml").write_text("seed: 20231002\n")
    assert default_seeds(tmp_path, 3) == [20231002, 1, 2]


def test_the_dvc_commands_of_a_sweep(tmp_path):
    """What run_sweep asks DVC, with and without --single-item (no DVC run: a stand-in answers)."""
    calls = []
    shown = [{"rev": "workspace", "experiments": None},
             {"rev": "abc", "name": "main", "experiments": [
                 {"name": "seed7-s", "executor": {"state": "success"}, "revs": [
                     {"name": "seed7-s", "error": None,
                      "data": {"metrics": {"m.json": {"data": {"acc": 0.5}}, "bad.json": {"error": {}}}}}]}]}]

    def run(cmd, **kwargs):
        calls.append(cmd[1:])
        out = json.dumps(shown) if "show" in cmd else "abc\n" if "rev-parse" in cmd else ""
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    runs = run_sweep(tmp_path, [7], ["a", "b@x"], single_item=False, copy_paths=["weights"], sweep="s", run=run)
    assert calls == [["rev-parse", "HEAD"],
                     ["exp", "run", "--queue", "-S", "seed=7", "-n", "seed7-s", "-C", "weights", "a", "b@x"],
                     ["exp", "run", "--run-all", "-j", "1"],
                     ["exp", "show", "--json", "--rev", "abc"]]   # the queue's baseline, though HEAD may move
    assert runs == [SeedRun(7, "seed7-s", "success", {"m.json": {"acc": 0.5}})]
    calls.clear()
    assert run_sweep(tmp_path, [8], ["a"], sweep="s", run=run)[0].state == "missing"
    assert calls[1] == ["exp", "run", "--queue", "-S", "seed=8", "-n", "seed8-s", "--single-item", "a"]


def test_collect_rebuilds_the_runs_of_an_earlier_sweep_without_running_anything(tmp_path):
    """``--collect``: only ``dvc exp show`` of the sweep's baseline; each seed's experiment found by its name."""
    calls = []
    shown = [{"rev": "abc", "experiments": [
        {"name": "seed1-old", "executor": {"state": "success"},
         "revs": [{"name": "seed1-old", "data": {"metrics": {"m.json": {"data": {"acc": 0.7}}}}}]},
        {"name": "seed2-old", "executor": {"state": "failed"}, "revs": [{"name": "seed2-old"}]}]}]

    def run(cmd, **kwargs):
        calls.append(cmd[1:])
        return subprocess.CompletedProcess(cmd, 0, stdout=json.dumps(shown), stderr="")

    runs = collect_runs(tmp_path, [1, 2, 3], "old", "abc", run=run)
    assert calls == [["exp", "show", "--json", "--rev", "abc"]]
    assert runs == [SeedRun(1, "seed1-old", "success", {"m.json": {"acc": 0.7}}), SeedRun(2, "seed2-old", "failed"),
                    SeedRun(3, "seed3-old", "missing")]
