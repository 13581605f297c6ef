"""The module graph has no cycles and keeps its layers: ``metrics`` (pure functions of arrays; models such as the
emotion classifier are passed in) imports nothing of the project; ``eat`` does not import the stage scripts or the
Prefect flows; the stage scripts do not import the flows. Read from the source (tests/import_graph.py), so a
function-level import counts as much as one at module top."""

from __future__ import annotations

from tests.import_graph import import_cycle, import_graph, layer_violations, project_modules

LAYERS = {"metrics": set(), "eat": {"metrics"}, "stages": {"eat", "metrics"}, "flows": {"eat", "metrics", "stages"}}
"""Package → the project packages its modules may import (besides its own)."""


def test_the_graph_covers_every_package_and_sees_function_level_imports():
    graph = import_graph()
    assert {name.split(".")[0] for name in project_modules()} == set(LAYERS)
    assert "eat.config" in graph["stages.train_latent"]
    assert "eat.latent.train" in graph["stages.train_latent"]
    assert any(target.startswith("eat.") for target in graph["flows.pipeline"])


def test_the_module_graph_has_no_cycles():
    cycle = import_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_each_package_imports_only_the_layers_below_it():
    wrong = layer_violations(import_graph(), LAYERS)
    assert not wrong, "\n".join(wrong)


def test_the_checks_name_a_planted_cycle_and_a_planted_upward_import():
    graph = {"eat.a": {"eat.b"}, "eat.b": {"eat.c"}, "eat.c": {"eat.a"}, "metrics.m": {"eat.a"}}
    cycle = import_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"eat.a", "eat.b", "eat.c"}
    assert layer_violations(graph, LAYERS) == ["metrics.m imports eat.a"]
    assert import_cycle({"eat.a": {"eat.b"}, "eat.b": set()}) is None
