"""eat.ray_runtime: one local Ray per session, reused when nested, nothing left running after it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import ray
import torch

from eat import ray_runtime
from eat.ray_runtime import (
    ADDRESS_ENV,
    TRAIN_POLL_ENV,
    gpu_available,
    ray_session,
    ray_temp_dir,
    remote_options,
    resolve_address,
)
from eat.ray_train import RAY_RUN_RECORD, STATE_FILE, latest_checkpoint, lean_torch_trainer
from tests.processes import processes_under


@pytest.fixture
def private_ray_dir(tmp_path, monkeypatch) -> Path:
    """A project of its own for Ray state (a long pytest path, so the short /tmp fallback is used too)."""
    monkeypatch.setattr(ray_runtime, "REPO", tmp_path)
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    directory = ray_temp_dir()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_address_comes_from_environment_then_configuration_then_local(monkeypatch):
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    assert resolve_address() == "local"
    assert resolve_address("ray://head:10001") == "ray://head:10001"
    monkeypatch.setenv(ADDRESS_ENV, "auto")
    assert resolve_address() == "auto"
    assert resolve_address("local") == "auto", "the deployment's cluster overrides params.yaml's ray.address"


@pytest.mark.parametrize("env, configured, source", [
    ("ray://head:10001", "local", r"\$EAT_RAY_ADDRESS, which overrides ray\.address\): refused\. .*fix "
                                  r"\$EAT_RAY_ADDRESS, or unset it to use ray\.address\."),
    (None, "ray://head:10001", r"ray\.address, \$EAT_RAY_ADDRESS being unset\): refused\. .*or fix ray\.address"),
])
def test_a_failed_connection_names_where_the_address_came_from(monkeypatch, env, configured, source):
    def refuse(**kwargs):
        raise ConnectionError("refused")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    if env is None:
        monkeypatch.delenv(ADDRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(ADDRESS_ENV, env)
    with pytest.raises(ConnectionError, match=r"the Ray cluster at 'ray://head:10001' \(from " + source):
        with ray_session(configured):
            pass


def test_temp_dir_is_inside_the_project_unless_its_path_is_too_long(tmp_path):
    assert ray_temp_dir(Path("/work/p")) == Path("/work/p/.ray")
    short = ray_temp_dir(tmp_path / ("x" * 80))
    assert len(str(short)) <= 43
    assert short != ray_temp_dir(tmp_path / ("y" * 80)), "two projects must not share Ray state"


def test_local_session_runs_a_task_reuses_when_nested_and_leaves_no_process(private_ray_dir):
    assert not ray.is_initialized()

    with ray_session(num_cpus=1):
        @ray.remote
        def square(x: int) -> int:
            return x * x

        assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
        # Workers run at the stage's own priority, not Ray's nice 15, so a busy core cannot stall a training step.
        assert ray.get(ray.remote(lambda: os.nice(0)).remote()) == os.nice(0)
        # Ray Train's controller (a Ray worker) polls its training workers often enough for a run to return at once.
        assert float(ray.get(ray.remote(lambda: os.environ.get(TRAIN_POLL_ENV, "2")).remote())) <= 0.2
        node = ray.get_runtime_context().get_node_id()
        with ray_session():  # nested: the same Ray, not a second one
            assert ray.get_runtime_context().get_node_id() == node
        assert ray.is_initialized(), "the nested session must not shut down the outer one"
        assert any("raylet" in cmd for cmd in processes_under(private_ray_dir))
        # Ray's own GPU detection and CUDA's agree, so GPUs are requested exactly where CUDA is.
        assert remote_options(num_gpus_if_cuda=1)["num_gpus"] == (1 if torch.cuda.is_available() else 0)

    assert not ray.is_initialized()
    assert processes_under(private_ray_dir) == [], "Ray processes left running after the session"


def test_session_reuses_a_caller_started_ray_and_requests_gpus_only_where_present(private_ray_dir):
    # A logical GPU makes this a "GPU cluster" for Ray's scheduler, whatever the hardware.
    ray.init(address="local", num_cpus=1, num_gpus=1, include_dashboard=False, _temp_dir=str(private_ray_dir))
    try:
        with ray_session():
            assert gpu_available()
            assert remote_options(num_gpus_if_cuda=0.5) == {"num_cpus": 1.0, "num_gpus": 0.5}
        assert ray.is_initialized(), "a session must not shut down a Ray it did not start"
    finally:
        ray.shutdown()


def test_latest_checkpoint_picks_the_newest_of_this_digest_and_skips_rays_run_record(tmp_path):
    for name, digest, step in [("checkpoint_a", "new", 4), ("checkpoint_b", "new", 8), ("checkpoint_c", "old", 12)]:
        (tmp_path / name).mkdir()
        torch.save({"digest": digest, "step": step}, tmp_path / name / STATE_FILE)
    (tmp_path / "checkpoint_d").mkdir()                           # cut short by a kill: no state file
    (tmp_path / RAY_RUN_RECORD).write_text("{}")
    folder, step = latest_checkpoint(tmp_path, "new")
    assert (folder.name, step) == ("checkpoint_b", 8)
    assert not (tmp_path / "checkpoint_c").exists()               # another digest's checkpoint is stale
    assert (tmp_path / RAY_RUN_RECORD).read_text() == "{}"


def test_the_trainer_keeps_rays_callbacks_but_the_dataset_manager_and_placement_group_cleaner(tmp_path):
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    def kinds(trainer_class: type) -> list[str]:
        trainer = trainer_class(lambda config: None, scaling_config=ScalingConfig(num_workers=1),
                                run_config=RunConfig(storage_path=str(tmp_path), name="unused"))
        return [type(c).__name__ for c in trainer._create_default_callbacks()]

    lean, full = kinds(lean_torch_trainer()), kinds(TorchTrainer)
    assert set(full) - set(lean) == {"DatasetsCallback", "PlacementGroupCleanerCallback"}
    assert "BackendSetupCallback" in lean and [k for k in full if k in lean] == lean   # the rest, in Ray's order
