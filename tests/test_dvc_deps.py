"""Every project module a DVC stage runs is one of that stage's dependencies.

DVC reruns a stage only when a listed dependency changes, so a module that a stage imports but does not list
lets an edit to it leave stale outputs in the cache. The stage's code is the import closure of the module its
``cmd`` runs (``python -m stages.X``), following every ``import`` of a project package in the source, the ones
inside functions included (they run too; tests/import_graph.py). Package ``__init__`` files that hold only a
docstring are left out: they carry no code.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO
from tests.import_graph import imported_names, module_file


def _has_code(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return path.name != "__init__.py" or any(not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
                                             for s in body)


def import_closure(module: str) -> set[str]:
    """Repository-relative files of ``module`` and of every project module it imports, transitively."""
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):              # a module's packages run their __init__ first
            prefix = ".".join(parts[:i])
            path = module_file(prefix)
            if path is not None and prefix not in seen:
                seen[prefix] = path
                todo.extend(imported_names(path, prefix))
    return {str(p.relative_to(REPO)) for p in seen.values() if _has_code(p)}


def _expand(value: Any, key: str, item: dict) -> Any:
    """``value`` (a ``foreach`` stage's ``do``) with ``${key}`` and ``${item.x}`` filled in, keys included."""
    if isinstance(value, dict):
        return {_expand(k, key, item): _expand(v, key, item) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, key, item) for v in value]
    if isinstance(value, str):
        return re.sub(r"\$\{item\.(\w+)\}", lambda m: str(item[m.group(1)]), value.replace("${key}", key))
    return value


def dvc_stages() -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, definition: cmd, deps, outs, …) of every stage of dvc.yaml, ``foreach`` stages expanded."""
    for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        if "foreach" not in stage:
            yield name, stage
            continue
        for key, item in stage["foreach"].items():
            yield f"{name}@{key}", _expand(stage["do"], key, item)


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def test_the_closure_follows_function_level_and_relative_imports():
    closure = import_closure("stages.train_latent")
    assert {"stages/train_latent.py", "eat/latent/train.py", "eat/config/__init__.py",
            "eat/config/params.py"} <= closure
    assert not any(p.startswith("tests/") for p in closure)


def test_every_module_a_stage_runs_is_a_dependency_of_that_stage():
    missing = {}
    for name, stage in dvc_stages():
        found = re.search(r"python -m ([\w.]+)", stage["cmd"])
        assert found, f"stage {name}: cmd does not run `python -m <module>`: {stage['cmd']}"
        absent = sorted(p for p in import_closure(found.group(1)) if not _covered(p, stage.get("deps", [])))
        if absent:
            missing[name] = absent
    assert not missing, "add these to the stages' deps in dvc.yaml:\n" + "\n".join(
        f"  {name}: {', '.join(paths)}" for name, paths in missing.items())


def _toy_status_after_bytecode(tmp_path: Path, dvcignore: str) -> dict:
    """``dvc status --json`` of a one-stage project (deps: a code folder) after Python bytecode appears in it."""
    dvc = str(Path(sys.executable).with_name("dvc"))
    (tmp_path / "pkg").mkdir(parents=True)
    (tmp_path / "pkg" / "mod.py").write_text("VALUE = 1\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  run:\n    cmd: python -c \"open('out.txt', 'w').write('1')\"\n"
                                       "    deps: [pkg]\n    outs: [out.txt]\n")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / ".dvcignore").write_text(dvcignore)
    subprocess.run([dvc, "repro", "-q"], cwd=tmp_path, check=True, env=env)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\x00bytecode")
    shown = subprocess.run([dvc, "status", "--json"], cwd=tmp_path, check=True, env=env, capture_output=True, text=True)
    return json.loads(shown.stdout)


def test_python_bytecode_beside_the_code_leaves_every_stage_up_to_date(tmp_path):
    """The project's .dvcignore keeps .pyc files (written wherever PYTHONDONTWRITEBYTECODE is unset) out of the
    hash of a code folder a stage depends on; without it the stage reads as changed (the control)."""
    assert _toy_status_after_bytecode(tmp_path / "ours", (REPO / ".dvcignore").read_text()) == {}
    assert _toy_status_after_bytecode(tmp_path / "bare", "") != {}
