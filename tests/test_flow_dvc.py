"""The flow's DVC side without a Prefect server: DAG order, status, running a stage, params, artifacts, CLI."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from dvc.repo import Repo
from prefect.states import Failed

from eat.config import ConfigError
from eat.orchestration.dag import DvcBusy, UnknownStage, final_reports, pending_changes, plan
from eat.orchestration.params import apply_run_params
from eat.orchestration.report import flatten_metrics, metrics_table
from eat.orchestration.repro import _clock, load_timings, will_run
from eat.orchestration.repro import main as repro_main
from eat.orchestration.runner import StageFailed, repro_stage, stage_env
from flows.cli import prepare_environment
from flows.pipeline import _transient, artifact_key
from tests.flow_toy import make_toy_repo, runs_of


@pytest.fixture
def toy(tmp_path):
    return make_toy_repo(tmp_path / "toy")


def _repro(root, name):
    lines: list[tuple[str, str]] = []
    run = repro_stage(root, name, stage_env(), on_line=lambda stream, line: lines.append((stream, line)))
    return run, lines


def test_plan_is_dag_order_and_a_subset_brings_its_upstream(toy):
    assert [s.name for s in plan(toy)] == ["prepare", "train", "report"]
    assert [s.name for s in plan(toy, ["train"])] == ["prepare", "train"]
    train = plan(toy, ["train"])[-1]
    assert train.metrics == ("reports/toy/metrics.json",) and train.plots == ("reports/toy/loss.csv",)
    assert final_reports(toy) == ("reports/toy/report.md",)
    with pytest.raises(UnknownStage, match="no stage 'trian'.*its stages are: prepare, report, train"):
        plan(toy, ["trian"])


def test_status_then_run_then_up_to_date_then_restored_from_run_cache(toy):
    assert pending_changes(toy, "prepare")  # never ran
    run, lines = _repro(toy, "prepare")
    assert run.outcome == "ran" and ("stdout", "> python toy.py prepare") in lines
    assert [("stdout", "prepared 1/2"), ("stdout", "prepared 2/2")] == [x for x in lines if "prepared " in x[1]]
    assert pending_changes(toy, "prepare") == []

    (toy / "data" / "prepared.txt").unlink()
    assert pending_changes(toy, "prepare") == ["changed outs: data/prepared.txt deleted"]
    run, _ = _repro(toy, "prepare")
    assert run.outcome == "restored" and runs_of(toy, "prepare") == 1, "DVC's run-cache restores without running"


def test_failing_stage_raises_with_its_stderr_tail(toy):
    _repro(toy, "prepare")
    (toy / "train.yaml").write_text("lr: .nan\n")
    with pytest.raises(StageFailed, match=r"(?s)stage 'train' failed.*checking the learning rate.*loss is NaN"):
        _repro(toy, "train")


def test_an_interrupted_run_stops_the_stage_command_too(toy):
    (toy / "dvc.yaml").write_text(
        "stages:\n  slow:\n    cmd: python -c \"print('started', flush=True); import time; time.sleep(120)\"\n")

    def interrupt(_stream: str, line: str) -> None:
        if line == "started":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        repro_stage(toy, "slow", stage_env(), on_line=interrupt)
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline")
                if b"time.sleep(120)" in _read(p)], "the stage's command outlived the interrupted run"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended while we looked
        return b""


def test_a_held_dvc_lock_is_a_transient_error_and_only_that_is_retried(toy):
    with Repo(str(toy)) as repo, repo.lock:  # another DVC process, as far as the flow can tell
        with pytest.raises(DvcBusy):
            pending_changes(toy, "prepare")
    assert _transient(None, None, Failed(data=DvcBusy("locked")))
    assert _transient(None, None, Failed(data=OSError("too many open files")))
    assert not _transient(None, None, Failed(data=StageFailed("stage 'train' failed")))


def test_run_params_apply_a_profile_then_overrides_and_reject_unknown_keys(toy):
    micro = yaml.safe_load((toy / "configs" / "micro.yaml").read_text())
    changes = apply_run_params(toy, "micro", ["seed=7", "synth.crf=23"])
    params = yaml.safe_load((toy / "params.yaml").read_text())
    assert len(changes) == 2 and params["seed"] == 7 and params["synth"]["crf"] == 23
    assert params["synth"]["mead"]["levels"] == micro["synth"]["mead"]["levels"]

    before = (toy / "params.yaml").read_text()
    with pytest.raises(ConfigError, match="synth.nope"):
        apply_run_params(toy, overrides=["synth.nope=1"])
    with pytest.raises(ConfigError, match="synth.crf"):
        apply_run_params(toy, overrides=["synth.crf=lots"])
    with pytest.raises(ConfigError, match="no such profile.*micro"):
        apply_run_params(toy, "mikro")
    assert (toy / "params.yaml").read_text() == before, "a rejected override must leave params.yaml as it was"
    assert not list(toy.glob(".params.*")), "no scratch file left behind"


def test_metrics_become_a_flat_markdown_table(tmp_path):
    assert flatten_metrics({"clips": {"MEAD": 144, "LRW": 30}, "hours": 0.15}) == {
        "clips.MEAD": 144, "clips.LRW": 30, "hours": 0.15}
    (tmp_path / "m.json").write_text('{"psnr": 31.234567, "acc": {"top1": 0.5}}')
    assert metrics_table(tmp_path, "m.json").splitlines()[-2:] == ["| psnr | 31.2346 |", "| acc.top1 | 0.5 |"]
    assert "not written" in metrics_table(tmp_path, "missing.json")
    assert artifact_key("train@paper") == "stage-train-paper"
    assert artifact_key("sub/dvc.yaml:eval") == "stage-sub-dvc-yaml-eval"


def test_cli_falls_back_to_ephemeral_mode_when_no_server_answers(tmp_path, capsys):
    environ = {"PREFECT_API_URL": "http://127.0.0.1:9/api"}  # port 9 (discard): nothing listens
    assert prepare_environment(tmp_path, environ) is None
    assert "PREFECT_API_URL" not in environ and "ephemeral mode" in capsys.readouterr().err
    assert environ["PREFECT_HOME"] == str(tmp_path / ".prefect")
    assert environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and environ["RAY_USAGE_STATS_ENABLED"] == "0"


def test_stage_env_passes_the_ray_address_and_puts_this_venv_first(monkeypatch):
    monkeypatch.delenv("EAT_RAY_ADDRESS", raising=False)
    env = stage_env("ray://head:10001")
    assert env["EAT_RAY_ADDRESS"] == "ray://head:10001" and env["PYTHONUNBUFFERED"] == "1"
    assert Path(shutil.which("python", path=env["PATH"])).parent == Path(sys.executable).parent
    assert "EAT_RAY_ADDRESS" not in stage_env(None)


def test_make_repro_lists_expected_times_then_reports_progress_and_records_timings(toy, capsys):
    assert will_run(toy) == {"prepare": True, "train": True, "report": True}
    assert repro_main(["--repo", str(toy)]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 stages will run" in out and "3 stage(s) never timed" in out
    assert "[1/3] prepare ran in" in out and "[3/3] report ran in" in out and "remaining ≈ 0s" in out
    timings = load_timings(toy / "reports" / "timings.json")
    assert set(timings) == {"prepare", "train", "report"} and all(t["outcome"] == "ran" for t in timings.values())
    assert will_run(toy) == {"prepare": False, "train": False, "report": False}
    assert repro_main(["--repo", str(toy)]) == 0 and "every stage is up to date" in capsys.readouterr().out

    (toy / "train.yaml").write_text("lr: 0.2\n")          # train changes, so report (downstream) runs too
    assert will_run(toy) == {"prepare": False, "train": True, "report": True}
    assert repro_main(["--repo", str(toy)]) == 0
    out = capsys.readouterr().out
    assert "2 of 3 stages will run" in out and "never timed" not in out
    assert re.search(rf"^\s+train\s+{re.escape(_clock(timings['train']['seconds']))}$", out, re.M)
    assert runs_of(toy, "prepare") == 1 and runs_of(toy, "train") == 2
