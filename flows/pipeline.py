"""The Prefect flow over the DVC pipeline: one task per stage, in DAG order; DVC decides what runs.

Each task asks DVC whether its stage is up to date. If it is, the task ends in the
``Cached`` state and nothing runs; otherwise it runs ``dvc repro --single-item <stage>``
and streams every output line into the task's log. Stages run one after another because
DVC allows one writer per repository; the parallelism is inside stages (Ray, see
``eat/ray_runtime.py``), on the cluster the ``ray_address`` parameter names.

A failing stage fails its task and the flow, with its last stderr lines in the message;
everything earlier stays in DVC's cache, so the next run starts at the failed stage.
Only transient errors (the DVC lock held by another process, an OS error) are retried.
"""

from __future__ import annotations

import re
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import Completed, State

from eat.orchestration.dag import DvcBusy, Stage, final_reports, pending_changes, plan
from eat.orchestration.params import apply_run_params
from eat.orchestration.report import stage_markdown, summary_markdown
from eat.orchestration.runner import StageRun, repro_stage, stage_env

CACHED = "Cached"
"""State name of a task whose stage DVC found up to date (a COMPLETED state, like Prefect's own cache hits)."""


def artifact_key(stage_name: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes: ``train@paper`` → ``stage-train-paper``."""
    return "stage-" + re.sub(r"[^a-z0-9]+", "-", stage_name.lower()).strip("-")


def _transient(task: object, task_run: TaskRun, state: State) -> bool:
    """Retry only what may pass by itself: the DVC lock held elsewhere, an OS error (not a failing stage)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, DvcBusy | OSError)


@task(name="dvc-stage", task_run_name="{stage.name}", retries=3, retry_delay_seconds=[5, 20, 60],
      retry_condition_fn=_transient, cache_policy=NO_CACHE, persist_result=False)
def run_stage(root: Path, stage: Stage, ray_address: str | None, reports: tuple[str, ...]) -> State:
    """Bring one stage up to date through DVC; log its output, publish its metrics and links."""
    logger = get_run_logger()

    def log_line(_stream: str, line: str) -> None:
        if line.strip():  # DVC pads its messages with blank lines
            logger.info(line)

    changes = pending_changes(root, stage.name)
    if changes:
        logger.info("DVC will re-run %s: %s", stage.name, "; ".join(changes))
        result = repro_stage(root, stage.name, stage_env(ray_address), on_line=log_line)
    else:
        logger.info("%s is up to date in DVC: skipped, not re-run", stage.name)
        result = StageRun(stage=stage.name, outcome="cached", seconds=0.0)
    create_markdown_artifact(key=artifact_key(stage.name),
                             markdown=stage_markdown(root, stage, result.outcome, result.seconds, reports),
                             description=f"DVC stage {stage.name}: metrics, plots, reports")
    message = f"{stage.name}: {result.outcome} ({result.seconds:.1f} s)"
    if result.outcome == "cached":
        return Completed(name=CACHED, message=message, data=result)
    return Completed(message=message, data=result)


@flow(name="eat-pipeline")
def pipeline(profile: str | None = None, overrides: list[str] | None = None, stages: list[str] | None = None,
             ray_address: str | None = None, repo: str = ".") -> list[StageRun]:
    """Run the DVC pipeline of ``repo`` stage by stage.

    profile: a name in configs/ merged into params.yaml first (as ``make repro PROFILE=``).
    overrides: ``key=value`` settings applied to params.yaml after it (``dvc exp run -S`` syntax).
    stages: run only these and what they depend on (default: every stage in dvc.yaml).
    ray_address: the Ray cluster stages use (``auto``, ``host:6379``, ``ray://host:10001``), passed to them
        as ``EAT_RAY_ADDRESS`` (see eat/ray_runtime.py); default: the stages' own setting, a local Ray.
    repo: the project root.
    """
    logger = get_run_logger()
    root = Path(repo).resolve()
    for change in apply_run_params(root, profile, overrides or ()):
        logger.info(change)
    todo = plan(root, stages)
    logger.info("DAG order: %s", " → ".join(s.name for s in todo))
    reports = final_reports(root)
    done: list[StageRun] = []
    for i, stage in enumerate(todo):
        state = run_stage(root, stage, ray_address, reports, return_state=True)
        if state.is_failed():
            _publish_summary(done, failed=stage.name, not_reached=[s.name for s in todo[i + 1:]])
            state.result()  # raises the stage's error: the flow fails with its message
        done.append(state.result())
    _publish_summary(done)
    return done


def _publish_summary(done: list[StageRun], failed: str | None = None, not_reached: list[str] | None = None) -> None:
    rows = [(r.stage, r.outcome, r.seconds) for r in done] + ([(failed, "failed", 0.0)] if failed else [])
    create_markdown_artifact(key="pipeline-summary", markdown=summary_markdown(rows, not_reached or []),
                             description="DVC pipeline: one row per stage")
