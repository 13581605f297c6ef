"""The project's import graph read from the source (``ast``, nothing imported): every ``import`` of a project
package, the ones inside functions included (they run too), relative imports resolved. Used by
tests/test_dvc_deps.py (a stage's code is its import closure) and tests/test_module_graph.py (no cycles, layers)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("eat", "metrics", "stages", "flows")


def module_file(name: str) -> Path | None:
    """The file of dotted module ``name`` (a package's ``__init__.py``), or None when it is not a project module."""
    path = REPO / Path(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported_names(path: Path, module: str) -> set[str]:
    """Dotted project names ``path`` imports (``from a import b`` yields ``a`` and ``a.b``: b may be a module)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {n for n in names if n.split(".")[0] in PACKAGES}


def project_modules() -> dict[str, Path]:
    """Dotted name → file of every module of the project's packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def nearest_module(name: str, modules: dict[str, Path] | set[str]) -> str | None:
    """``name`` or its closest enclosing project module (``eat.io.write_json`` → ``eat.io``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports (itself left out)."""
    modules = project_modules()
    graph = {}
    for name, path in modules.items():
        targets = {nearest_module(n, modules) for n in imported_names(path, name)}
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, …, a]``, or None when it has none."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return list(reversed(error.args[1]))
    return None


def layer_violations(graph: dict[str, set[str]], layers: dict[str, set[str]]) -> list[str]:
    """``"a.x imports b.y"`` for each edge whose target's top package is neither the source's own nor one
    ``layers[source package]`` allows."""
    return sorted(f"{module} imports {target}" for module, targets in graph.items() for target in targets
                  if target.split(".")[0] not in layers[module.split(".")[0]] | {module.split(".")[0]})
