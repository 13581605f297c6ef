"""Shared fixtures: a tiny synthetic dataset generated once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# OpenCV before decord, whichever test module pytest imports first: decord's wheel carries its own zlib, and when it
# is loaded first OpenCV's PNG codec writes files it cannot read back ("libpng error: bad parameters to zlib"; seen
# when tests/test_preprocess_faults.py, which imports decord, ran before a test that writes a PNG photo).
import cv2  # noqa: F401
import pandas as pd
import pytest
import torch

from eat.config import Params, deep_merge, parse_params, read_yaml
from tests.processes import RAY_TRAIN_FAST_POLL, REPO, RayHead, start_ray_head
from tests.supervision_fixture import write_supervision_fixture

# Every process the suite starts imports the repository's packages, ``tests`` included, from this checkout: Ray's
# workers (spawned by the raylet, which inherits this environment) unpickle test helpers such as the
# TemplateDetector of tests/test_metrics_table.py, and without this they cannot import ``tests`` under pytest-xdist.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)


def micro_params(overlay: dict | None = None) -> Params:
    """params.yaml + configs/micro.yaml (+ ``overlay``), validated."""
    merged = deep_merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "configs" / "micro.yaml"))
    return parse_params(deep_merge(merged, overlay or {}), "micro test params")


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> tuple[Params, Path, pd.DataFrame]:
    """All eight emotions for one train and one test MEAD identity, plus LRW and VoxCeleb2 clips."""
    from eat.synth.generate import generate

    params = micro_params({"synth": {"mead": {
        "emotions": ["angry", "contempt", "disgusted", "fear", "happy", "neutral", "sad", "surprised"]}}})
    out = tmp_path_factory.mktemp("synth")
    clips = generate(params, out)
    return params, out, clips


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """One Ray head for this test session (under pytest-xdist: per worker, each its own ports and temp dir), for the
    stage subprocesses of the slow tests: with ``ray_head.env`` in their environment (``EAT_RAY_ADDRESS``) a stage
    attaches to it in about a second instead of starting and stopping a local Ray of its own. Started on first use,
    stopped when the session ends. Sized like a micro-profile stage's local Ray (``ray.workers`` = 2 CPUs, at least
    what any one Ray Train run of the suite's fixtures asks for); tests run one at a time per worker, so stages never
    share it concurrently. Its workers run in the checkout, where the tests run their stages (``cwd=REPO``), as the
    workers of a stage's own local Ray would. The suite still covers the default, a local Ray started by the stage
    itself: tests/test_latent_train.py's uninterrupted run, the ``ray`` case of tests/test_faults.py's Ctrl-C test,
    and the in-process Ray tests (tests/test_ray_runtime.py, tests/test_preprocess_faults.py)."""
    head = start_ray_head(num_cpus=2, cwd=REPO)
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models: one intra-op thread is ~100× faster than two on a busy 2-core machine (``pytestmark =
    pytest.mark.usefixtures("one_torch_thread")`` in the modules of tiny models)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def supervision(tmp_path_factory) -> dict[str, Path]:
    """The supervision networks' tiny fixture (tests/supervision_fixture.py), written once per test module:
    ``root`` (a folder for the module's outputs), ``pose`` and ``audio`` (the pose-stage and audio-feature tables)."""
    root = tmp_path_factory.mktemp("supervision")
    pose, audio = write_supervision_fixture(root / "clips")
    return {"root": root, "pose": pose, "audio": audio}


@pytest.fixture(scope="module")
def on_ray_head(ray_head: RayHead) -> Iterator[RayHead]:
    """The trainings of a module attach to the session's Ray head (about a second) instead of each starting and
    stopping a local Ray of its own, as the stages do with ``EAT_RAY_ADDRESS`` set."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**ray_head.env, **RAY_TRAIN_FAST_POLL}.items():
            patch.setenv(name, value)
        yield ray_head


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, longest first (``@pytest.mark.slow(seconds=…)``, their time alone on 2 cores): under
    ``pytest -n 2`` (``make test``) the end-to-end runs then start at once and overlap the many short tests,
    instead of being dealt out late and running alone at the end."""
    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("slow")
        return marker.kwargs.get("seconds", 60) if marker else 0

    items.sort(key=seconds, reverse=True)
