"""dvc.yaml and eat/paths.py name the same files.

Every stage script defaults its path arguments to constants of eat/paths.py. For each stage of dvc.yaml, run as its
``cmd`` runs it: a path the cmd passes to such an argument must equal the constant, and a default the cmd leaves
in place must be one of the stage's deps, outs, metrics or plots, or a folder or file holding one (else DVC does not
track what the stage reads or writes there). The parser of a stage is the one its ``main()`` builds, stopped at
``parse_args``; what dvc.yaml passes and what a script defaults to are read by parsing the cmd with and without
each ``--flag value`` pair.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import shlex
from pathlib import Path
from typing import Any

import pytest

from eat import paths
from tests.test_dvc_deps import dvc_stages


class _Built(Exception):
    """Raised in place of ``parse_args``: the parser is built, the stage must not run."""


def stage_parser(module: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The argument parser that ``module.main()`` builds."""
    built: list[argparse.ArgumentParser] = []

    def capture(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        raise _Built

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", capture)
        with pytest.raises(_Built):
            importlib.import_module(module).main()
    return built[0]


def defaults_and_passed(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, tuple[Any, Any]]:
    """``{dest: (default, what argv passes or None)}`` for every argument of argv's (sub)command but the required."""
    given = vars(parser.parse_args(argv))
    found = {dest: (value, None) for dest, value in given.items()}
    for i, token in enumerate(argv):
        if not token.startswith("--"):
            continue
        assert i + 1 < len(argv) and not argv[i + 1].startswith("-"), f"{token} without a value in {argv}"
        dest = token[2:].replace("-", "_")      # argparse's dest of an option (no stage script sets dest=)
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                found[dest] = (vars(parser.parse_args(argv[:i] + argv[i + 2:]))[dest], given[dest])
        except SystemExit:                      # a required argument: it has no default to agree with
            del found[dest]
    return found


def declared(stage: dict[str, Any]) -> list[Path]:
    """The paths a dvc.yaml stage declares: deps, outs, metrics and plots."""
    entries = [e for kind in ("deps", "outs", "metrics", "plots") for e in stage.get(kind, [])]
    return [Path(next(iter(e)) if isinstance(e, dict) else e) for e in entries]


def _related(a: Path, b: Path) -> bool:
    """The same path, or one a folder holding the other."""
    return a == b or a in b.parents or b in a.parents


def _named() -> list[tuple[str, Path]]:
    """(name, path) of every constant of eat/paths.py."""
    return [(name, value) for name, value in vars(paths).items() if name.isupper() and isinstance(value, Path)]


def disagreements() -> list[str]:
    """Every place where a stage of dvc.yaml and the defaults of its script (eat/paths.py) part ways."""
    constants, problems = {value: name for name, value in _named()}, []
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, stage in dvc_stages():
            python, dash_m, module, *argv = shlex.split(stage["cmd"])
            assert (python, dash_m) == ("python", "-m"), f"{name}: cmd does not run `python -m <module>`"
            for dest, (default, passed) in defaults_and_passed(stage_parser(module, monkeypatch), argv).items():
                if not isinstance(default, Path):
                    continue
                flag = "--" + dest.replace("_", "-")
                if default not in constants:
                    problems.append(f"{name}: {module} {flag} defaults to {default}, not a constant of eat/paths.py")
                elif passed is not None and passed != default:
                    problems.append(f"{name}: dvc.yaml passes {flag} {passed}, eat.paths.{constants[default]} "
                                    f"is {default}")
                elif passed is None and not any(_related(default, p) for p in declared(stage)):
                    problems.append(f"{name}: {module} uses {default} (eat.paths.{constants[default]}, the default of "
                                    f"{flag}), which the stage's deps and outs in dvc.yaml leave out")
    return problems


def test_each_path_is_named_once():
    named = [str(value) for _, value in _named()]
    assert len(named) == len(set(named)), f"eat/paths.py names a path twice: {sorted(named)}"


def test_dvc_yaml_passes_and_declares_the_paths_of_eat_paths():
    problems = disagreements()
    assert not problems, "dvc.yaml and eat/paths.py disagree:\n  " + "\n  ".join(problems)


def test_a_moved_constant_is_caught(monkeypatch):
    monkeypatch.setattr(paths, "AUDIO_TABLE", paths.FEATURES / "audio_v2.parquet")
    problems = disagreements()
    assert ("audio_features: dvc.yaml passes --index data/features/audio.parquet, eat.paths.AUDIO_TABLE is "
            "data/features/audio_v2.parquet") in problems
    assert any(p.startswith("train_a2et@latent: stages.train_a2et uses data/features/audio_v2.parquet")
               for p in problems), problems
