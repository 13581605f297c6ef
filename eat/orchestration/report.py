"""Markdown for the run's artifacts: a stage's metrics as a table, links to its plots and reports."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from eat.orchestration.dag import Stage
from eat.paths import REPORTS

OUTCOME_TEXT = {
    "ran": "ran",
    "restored": "restored from the DVC run-cache (command not run)",
    "cached": "cached: up to date, not re-run",
}


def flatten_metrics(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"clips": {"MEAD": 144}}`` → ``{"clips.MEAD": 144}``, the keys ``dvc metrics show`` prints."""
    if isinstance(data, Mapping):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(flatten_metrics(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): data}


def _value(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def metrics_table(root: Path, path: str) -> str:
    """One metrics file (JSON or YAML, as DVC reads them) as a two-column Markdown table."""
    file = root / path
    if not file.is_file():
        return f"`{path}`: not written (yet)"
    try:
        data = yaml.safe_load(file.read_text())  # JSON is YAML
    except yaml.YAMLError as exc:
        return f"`{path}`: unreadable ({exc})"
    rows = "\n".join(f"| {key or '(value)'} | {_value(value)} |" for key, value in flatten_metrics(data).items())
    return f"`{path}`\n\n| metric | value |\n|---|---|\n{rows}"


def links(root: Path, paths: Iterable[str]) -> str:
    """Markdown links to files in the workspace (``file://`` URLs; the text is the path in the repo)."""
    items = [f"- [{p}]({(root / p).absolute().as_uri()})" + ("" if (root / p).exists() else " (missing)")
             for p in paths]
    return "\n".join(items) or "- none"


def stage_markdown(root: Path, stage: Stage, outcome: str, seconds: float, final_reports: Sequence[str]) -> str:
    """The artifact of one stage: what happened, its metrics, plots, reports and the pipeline's final report."""
    reports = [p for p in stage.outs if Path(p).parts[:1] == REPORTS.parts]
    sections = [
        f"## Stage `{stage.name}`: {OUTCOME_TEXT.get(outcome, outcome)} ({seconds:.1f} s)",
        f"`{stage.cmd}`",
        "### Metrics",
        "\n\n".join(metrics_table(root, p) for p in stage.metrics) or "none declared in dvc.yaml",
        "### Plots",
        links(root, stage.plots),
        "### Reports of this stage",
        links(root, reports),
        "### Final report",
        links(root, final_reports),
    ]
    return "\n\n".join(sections)


def summary_markdown(rows: Sequence[tuple[str, str, float]], not_reached: Sequence[str] = ()) -> str:
    """The flow's artifact: one row per stage (name, outcome, seconds), then the stages a failure stopped."""
    lines = ["| stage | result | seconds |", "|---|---|---|"]
    lines += [f"| `{name}` | {OUTCOME_TEXT.get(outcome, outcome)} | {seconds:.1f} |" for name, outcome, seconds in rows]
    lines += [f"| `{name}` | not reached | |" for name in not_reached]
    return "## Pipeline run\n\n" + "\n".join(lines)
