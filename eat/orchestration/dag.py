"""The pipeline's stages as DVC sees them, in the order ``dvc repro`` would run them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dvc.exceptions import DvcException
from dvc.lock import LockError
from dvc.repo import Repo
from dvc.repo.reproduce import get_active_graph, plan_repro

from eat.paths import REPORTS


class DvcBusy(RuntimeError):
    """Another DVC process holds the repository lock: transient, worth retrying."""


class UnknownStage(ValueError):
    """A requested stage is not in the repository's dvc.yaml files."""


@dataclass(frozen=True)
class Stage:
    """One DVC stage: its address (``name``, ``name@key`` or ``dir/dvc.yaml:name``) and the paths it declares.

    Paths are relative to the repository root; ``metrics`` and ``plots`` are the stage's
    ``metrics:`` and ``plots:`` entries, ``outs`` everything else it writes.
    """

    name: str
    cmd: str
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()

    @property
    def paths(self) -> tuple[str, ...]:
        return self.outs + self.metrics + self.plots


def stage_address(dvc_stage, root: str) -> str:
    """``dvc repro``'s address of a stage, relative to the repository root (DVC's own is relative to the cwd)."""
    dvcfile = os.path.relpath(dvc_stage.path, root)
    return dvc_stage.name if dvcfile == "dvc.yaml" else f"{dvcfile}:{dvc_stage.name}"


def _stage(dvc_stage, root: str) -> Stage:
    def rel(outs) -> tuple[str, ...]:
        return tuple(os.path.relpath(o.fs_path, root) for o in outs)

    outs = dvc_stage.outs
    cmd = dvc_stage.cmd if isinstance(dvc_stage.cmd, str) else " && ".join(dvc_stage.cmd)
    return Stage(name=stage_address(dvc_stage, root), cmd=cmd,
                 metrics=rel(o for o in outs if o.metric), plots=rel(o for o in outs if o.plot),
                 outs=rel(o for o in outs if not (o.metric or o.plot)))


def _open(root: Path) -> Repo:
    try:
        return Repo(str(root))
    except DvcException as exc:
        raise ValueError(f"{root}: not a DVC repository ({exc}); run from the project root or pass --repo") from exc


def plan(root: Path, targets: Sequence[str] | None = None) -> list[Stage]:
    """Stages with a command, in DAG order: all of them, or ``targets`` and everything upstream of them.

    The order is ``dvc repro``'s own (a post-order walk of the stage graph, frozen stages cut
    from their upstream), so a flow run and ``dvc repro <targets>`` visit the same stages.
    """
    with _open(root) as repo:
        graph = get_active_graph(repo.index.graph)
        selected = None
        if targets:
            by_name = {stage_address(s, repo.root_dir): s for s in graph if s.cmd}
            missing = [t for t in targets if t not in by_name]
            if missing:
                raise UnknownStage(f"no stage {', '.join(map(repr, missing))} in {root}/dvc.yaml; "
                                   f"its stages are: {', '.join(sorted(by_name))}")
            selected = [by_name[t] for t in targets]
        return [_stage(s, repo.root_dir) for s in plan_repro(graph, selected) if s.cmd]  # not `dvc add`ed data


def final_reports(root: Path) -> tuple[str, ...]:
    """What the pipeline's last stages (those nothing depends on) write under ``reports/``."""
    with _open(root) as repo:
        graph = repo.index.graph
        sinks = [s for s in plan_repro(graph) if s.cmd and graph.in_degree(s) == 0]
        paths = (p for s in sinks for p in _stage(s, repo.root_dir).paths)
        return tuple(p for p in paths if Path(p).parts[:1] == REPORTS.parts)


def pending_changes(root: Path, name: str) -> list[str]:
    """Why DVC would re-run stage ``name`` (``dvc status <name>``, one line per change); empty if up to date.

    Raises :class:`DvcBusy` if another DVC process holds the lock for longer than DVC waits.
    """
    dvcfile, _, stage_name = name.rpartition(":")
    target = f"{root / (dvcfile or 'dvc.yaml')}:{stage_name}"  # absolute: DVC resolves targets against the cwd
    try:
        with _open(root) as repo:
            status = repo.status(targets=[target])
    except LockError as exc:
        raise DvcBusy(f"stage {name!r}: {exc}") from exc
    lines = []
    for entry in (e for entries in status.values() for e in entries):
        if isinstance(entry, str):  # "always changed", "changed checksum"
            lines.append(entry)
            continue
        for kind, changes in entry.items():  # {"changed deps": {"data.txt": "modified", "params.yaml": {"seed": ...}}}
            lines.append(f"{kind}: " + ", ".join(f"{path} {_how(how)}" for path, how in changes.items()))
    return lines


def _how(change: str | dict[str, str]) -> str:
    return change if isinstance(change, str) else "(" + ", ".join(f"{k} {v}" for k, v in change.items()) + ")"
