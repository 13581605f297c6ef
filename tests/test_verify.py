"""``make verify`` on a toy git + DVC project: bands, flipped orderings, new keys; and configs/verify.yaml itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eat.config import ConfigError
from eat.orchestration.seeds import seeds_config
from eat.orchestration.verify import MISSING, git_loader, load_config, lookup, main, references, resolve
from tests.conftest import REPO
from tests.flow_toy import make_toy_repo

METRICS = "reports/toy/metrics.json"
GIT_ID = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}

TOY_CONFIG = """\
metrics:
  - {name: top-1 accuracy, file: reports/toy/metrics.json, path: acc.top1, abs: 0.05}
  - {name: loss, file: reports/toy/metrics.json, path: loss, rel: 0.5}
orderings:
  - {name: top-1 beats loss by 0.5, file: reports/toy/metrics.json, greater: acc.top1, than: loss, margin: 0.5}
  - {name: loss above top-1, file: reports/toy/metrics.json, greater: loss, than: acc.top1}
"""


def _env() -> dict[str, str]:
    return {**os.environ, **GIT_ID, "DVC_NO_ANALYTICS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(root: Path, *cmd: str) -> None:
    subprocess.run(list(cmd), cwd=root, check=True, env=_env(), capture_output=True)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    """The toy pipeline run once by DVC and committed with its metrics: the "committed results"."""
    root = make_toy_repo(tmp_path_factory.mktemp("verify") / "toy")
    (root / ".gitignore").write_text("counts/\n")
    dvc = str(Path(sys.executable).with_name("dvc"))
    _run(root, dvc, "repro", "-q")
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-qm", "committed run")
    return root


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "verify.yaml"
    path.write_text(TOY_CONFIG)
    return path


@pytest.fixture(autouse=True)
def _restore(request):
    yield
    if "toy" in request.fixturenames:   # each test starts from the committed metrics
        _run(request.getfixturevalue("toy"), "git", "checkout", "--", METRICS)


def _write(root: Path, data: dict) -> None:
    (root / METRICS).write_text(json.dumps(data))


def _verify(toy: Path, config: Path, capsys, *extra: str) -> tuple[int, dict[str, str]]:
    code = main(["--repo", str(toy), "--config", str(config), *extra])
    out = capsys.readouterr().out
    verdicts = {}
    for line in out.splitlines():
        for name in ("top-1 accuracy", "loss above top-1", "top-1 beats loss by 0.5", "top-5 accuracy",
                     "top-5 beats loss", "loss"):
            if line.startswith(name + "  "):
                verdicts.setdefault(name, line)
    return code, verdicts


def test_an_unchanged_rerun_passes(toy, config, capsys):
    dvc = str(Path(sys.executable).with_name("dvc"))
    _run(toy, dvc, "repro", "-q", "-f", "train")          # the same run again: same numbers
    code, rows = _verify(toy, config, capsys)
    assert code == 0
    assert rows["top-1 accuracy"].split()[-3:] == ["0.9", "±0.05", "ok"]
    assert rows["loss"].split()[-2:] == ["±50%", "ok"]
    assert rows["top-1 beats loss by 0.5"].endswith("holds")
    assert rows["loss above top-1"].endswith("fails (as committed)"), "agrees with the committed run: no failure"


def test_a_flipped_ordering_fails(toy, config, capsys):
    _write(toy, {"loss": 0.45, "acc": {"top1": 0.9}})    # loss within ±50 %, but 0.9 - 0.45 <= 0.5
    code, rows = _verify(toy, config, capsys)
    assert code == 1
    assert rows["loss"].endswith(" ok")
    assert "0.9 ≤ 0.45 + 0.5" in rows["top-1 beats loss by 0.5"]
    assert rows["top-1 beats loss by 0.5"].endswith("FLIPPED: no longer holds")


def test_a_flip_the_other_way_fails_too(toy, tmp_path, capsys):
    config = tmp_path / "other.yaml"
    config.write_text("orderings:\n  - {name: loss above top-1, file: reports/toy/metrics.json, "
                      "greater: loss, than: acc.top1}\n")
    _write(toy, {"loss": 0.95, "acc": {"top1": 0.9}})
    code, rows = _verify(toy, config, capsys)
    assert code == 1 and rows["loss above top-1"].endswith("FLIPPED: now holds")


def test_a_metric_out_of_its_band_fails(toy, config, capsys):
    _write(toy, {"loss": 0.333, "acc": {"top1": 0.84}})   # 0.06 from 0.9; every ordering as committed
    code, rows = _verify(toy, config, capsys)
    assert code == 1
    assert rows["top-1 accuracy"].split()[-6:] == ["0.9", "0.84", "±0.05", "OUT", "OF", "BAND"]
    assert rows["top-1 beats loss by 0.5"].endswith("holds")


def test_a_key_new_in_this_run_is_new_not_a_failure(toy, tmp_path, capsys):
    config = tmp_path / "new.yaml"
    config.write_text(TOY_CONFIG.replace("orderings:\n", (
        "  - {name: top-5 accuracy, file: reports/toy/metrics.json, path: acc.top5, abs: 0.01}\n"
        "orderings:\n  - {name: top-5 beats loss, file: reports/toy/metrics.json, greater: acc.top5, than: loss}\n")))
    _write(toy, {"loss": 0.333, "acc": {"top1": 0.9, "top5": 0.99}})
    code, rows = _verify(toy, config, capsys)
    assert code == 0
    assert rows["top-5 accuracy"].split()[-4:] == ["—", "0.99", "±0.01", "new"]
    assert rows["top-5 beats loss"].endswith("new: holds")


def test_a_key_missing_now_fails(toy, config, capsys):
    _write(toy, {"loss": 0.333, "acc": {}})
    code, rows = _verify(toy, config, capsys)
    assert code == 1 and rows["top-1 accuracy"].endswith("MISSING now")


def test_strict_fails_an_ordering_that_never_held(toy, config, capsys):
    assert _verify(toy, config, capsys, "--strict")[0] == 1    # loss above top-1: fails as committed


def test_the_command_line_exits_non_zero_and_prints_the_table(toy, config, tmp_path):
    _write(toy, {"loss": 0.45, "acc": {"top1": 0.9}})
    md = tmp_path / "verify.md"
    done = subprocess.run([sys.executable, "-m", "eat.orchestration.verify", "--repo", str(toy),
                           "--config", str(config), "--markdown", str(md)],
                          cwd=REPO, capture_output=True, text=True, env=_env(), check=False)
    assert done.returncode == 1, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "committed", "now", "band", "verdict"]
    assert "FAIL" in done.stdout.splitlines()[-1]
    assert md.read_text().startswith("| metric | committed | now | band | verdict |")


def test_an_invalid_verify_file_exits_2(toy, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("metrics:\n  - {name: no band, file: reports/toy/metrics.json, path: loss}\n")
    assert main(["--repo", str(toy), "--config", str(bad)]) == 2
    assert "needs a band" in capsys.readouterr().err


def test_references_into_lists_ratios_and_differences():
    data = {"tables": [{"id": "T1", "rows": []},
                       {"id": "T3", "rows": [{"key": "enhanced", "cells": {"a.b": {"ours": 18.5}}}]}],
            "x": {"n": 3, "d": 4}, "gone": None}
    assert lookup(data, ["tables", {"id": "T3"}, "rows", {"key": "enhanced"}, "cells", "a.b", "ours"]) == 18.5
    assert lookup(data, "tables.0.id") == "T1"
    assert lookup(data, "tables.7.id") is MISSING and lookup(data, "x.n.deeper") is MISSING
    load = {"f.json": data}.get
    assert resolve({"file": "f.json", "ratio": ["x.n", "x.d"]}, load) == 0.75
    assert resolve({"file": "f.json", "difference": ["x.n", {"file": "f.json", "path": "x.d"}]}, load) == -1.0
    assert resolve("gone", load, "f.json") is None
    assert resolve("x.nope", lambda f: MISSING, "g.json") is MISSING
    with pytest.raises(ConfigError, match="no file"):
        resolve("x.n", load)


# --- the project's own verify file ----------------------------------------------------------------------------

def test_configs_verify_yaml_parses_and_names_keys_of_the_committed_reports():
    config = load_config(REPO / "configs" / "verify.yaml")
    assert config.metrics and config.orderings
    param, targets, criteria = seeds_config(config)
    assert param == "seed" and "train_sync_expert" in targets and criteria
    refs = [r for m in config.metrics for r in references(m)]
    refs += [r for o in [*config.orderings, *(c for c in criteria if "greater" in c)]
             for side in ("greater", "than") for r in references(o[side], o.get("file"))]
    refs += [r for c in criteria if "greater" not in c for r in references(c)]
    committed = git_loader(REPO)
    checked = 0
    for file, path in refs:
        data = committed(file)
        if data is MISSING:      # a report not committed (yet): nothing to check against
            continue
        assert lookup(data, path) is not MISSING, f"configs/verify.yaml: {file} at HEAD has no {path}"
        checked += 1
    assert checked >= len(refs) // 2, "most of the files configs/verify.yaml names are committed reports"
