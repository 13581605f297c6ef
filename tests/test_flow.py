"""The pipeline flow against a real Prefect server: one task run per stage, artifacts, DVC caching, resume.

A ``prefect server start`` on a free loopback port (state in a tmp PREFECT_HOME) serves the
module; the flow runs as a user runs it (``python -m flows``) on a toy DVC project
(tests/flow_toy.py), and every check reads Prefect's API.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterTaskRunId,
)
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.conftest import REPO
from tests.flow_toy import make_toy_repo, runs_of
from tests.prefect_server import prefect_server


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A Prefect server for this module; yields the environment that points a flow at it."""
    with prefect_server(tmp_path_factory.mktemp("prefect_home")) as server:
        yield server.env


def run_flow(env: dict[str, str], repo: Path, *args: str) -> tuple[int, UUID, str]:
    """``python -m flows --repo repo args``: exit code, flow run id, stderr."""
    proc = subprocess.run([sys.executable, "-m", "flows", "--repo", str(repo), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r"Flow run: \S+/runs/flow-run/([0-9a-f-]{36})", proc.stdout)
    assert found, f"no flow run URL printed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.returncode, UUID(found.group(1)), proc.stderr


class Api:
    """What the Prefect server recorded about one flow run."""

    def __init__(self, env: dict[str, str], flow_run_id: UUID) -> None:
        with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
            self.flow_run = client.read_flow_run(flow_run_id)
            task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            self.task_runs = {t.name: t for t in task_runs}
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
            self.artifacts = {a.key: a.data for a in artifacts}
            logs = client.read_logs(LogFilter(task_run_id=LogFilterTaskRunId(any_=[t.id for t in task_runs])))
            self.task_logs = {name: [log.message for log in logs if log.task_run_id == t.id]
                              for name, t in self.task_runs.items()}

    def states(self) -> dict[str, str]:
        return {name: t.state.name for name, t in self.task_runs.items()}


def test_flow_runs_stages_once_then_reports_them_cached(prefect_env, tmp_path):
    repo = make_toy_repo(tmp_path / "toy")

    code, run_id, stderr = run_flow(prefect_env, repo, "--stages", "train")  # train and what it needs
    assert code == 0, stderr
    first = Api(prefect_env, run_id)
    assert first.flow_run.state.is_completed()
    assert first.states() == {"prepare": "Completed", "train": "Completed"}
    assert [runs_of(repo, s) for s in ("prepare", "train", "report")] == [1, 1, 0]
    # The stage's output streamed into the task's log, one record per line.
    assert ["epoch 0 loss 1.000", "epoch 1 loss 0.500", "epoch 2 loss 0.333"] == [
        m for m in first.task_logs["train"] if m.startswith("epoch")]
    assert set(first.artifacts) == {"stage-prepare", "stage-train", "pipeline-summary"}
    train = first.artifacts["stage-train"]
    assert "| loss | 0.333 |" in train and "| acc.top1 | 0.9 |" in train
    assert f"[reports/toy/loss.csv]({(repo / 'reports/toy/loss.csv').as_uri()})" in train
    assert "[reports/toy/report.md]" in train, "the pipeline's final report is linked"

    code, run_id, stderr = run_flow(prefect_env, repo)
    assert code == 0, stderr
    second = Api(prefect_env, run_id)
    assert second.states() == {"prepare": "Cached", "train": "Cached", "report": "Completed"}
    assert [runs_of(repo, s) for s in ("prepare", "train", "report")] == [1, 1, 1], "DVC re-ran a cached stage"
    assert "| loss | 0.333 |" in second.artifacts["stage-train"], "a cached stage still shows its metrics"


def test_failing_stage_fails_the_flow_with_its_error_and_a_rerun_resumes_there(prefect_env, tmp_path):
    repo = make_toy_repo(tmp_path / "toy", lr=".nan")

    code, run_id, stderr = run_flow(prefect_env, repo)
    assert code == 1
    failed = Api(prefect_env, run_id)
    assert failed.flow_run.state.is_failed()
    assert failed.states() == {"prepare": "Completed", "train": "Failed"}, "report must not start after a failure"
    message = failed.task_runs["train"].state.message
    assert "loss is NaN: set a finite lr in train.yaml" in message and "checking the learning rate" in message
    assert "loss is NaN" in failed.flow_run.state.message and "loss is NaN" in stderr
    assert "| `report` | not reached |" in failed.artifacts["pipeline-summary"]

    (repo / "train.yaml").write_text("lr: 0.1\n")
    code, run_id, stderr = run_flow(prefect_env, repo)
    assert code == 0, stderr
    assert Api(prefect_env, run_id).states() == {"prepare": "Cached", "train": "Completed", "report": "Completed"}
    assert [runs_of(repo, s) for s in ("prepare", "train", "report")] == [1, 2, 1], "the rerun must resume at train"
