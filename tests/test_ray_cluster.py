"""A real multi-node Ray cluster: work spreads over its nodes and survives losing one.

``ray.cluster_utils.Cluster`` starts a head and further nodes on this machine, each its own raylet
over loopback, so the stages reach it the way they reach a real cluster (through its address) and a
node can be killed mid-stage. Per-clip preprocessing (:func:`eat.parallel.map_clips`) must run on
every node and rerun the clips of a lost node elsewhere; training (:func:`eat.ray_train.fit`) must
place one worker per node, give the weights of a one-worker run with the same global batch, and,
after losing a node, restart from its last checkpoint and still end with the uninterrupted weights.
The training loop is a purpose-built toy (a float64 linear model, SGD with momentum) whose batches
are a function of (seed, step) split by rank, like the real stages'.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
import torch
from ray.cluster_utils import Cluster

from eat import ray_train
from eat.config import RayConfig
from eat.parallel import map_clips
from eat.ray_runtime import ADDRESS_ENV
from tests.processes import processes_under

WAIT_S = 60                    # bound on every wait for something the cluster should do
TOY = {"seed": 7, "global_batch": 4, "lr": 0.05, "steps": 6, "checkpoint_every": 2}
TOLERANCE = 1e-12              # float64: all-reduced per-worker means vs one mean differ by rounding only

# Ray workers cannot import a test module (tests/ is not a package), so its functions travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


# ---- the cluster --------------------------------------------------------------------------------

@pytest.fixture
def cluster(monkeypatch) -> Iterator[Cluster]:
    """A head and one worker node, 1 CPU each; Ray's state (and its address file) in a private short temp dir."""
    temp_dir = Path(tempfile.mkdtemp(prefix="eat-rc-"))
    (temp_dir / "ray").mkdir()
    monkeypatch.setenv("RAY_TMPDIR", str(temp_dir))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster()
    try:
        cluster.add_node(num_cpus=1, include_dashboard=False)
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes(timeout=WAIT_S)
        monkeypatch.setenv(ADDRESS_ENV, cluster.address)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        try:
            _wait_for(lambda: not processes_under(temp_dir), "Ray processes to exit after the cluster's shutdown")
        finally:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _head(cluster: Cluster) -> str:
    return cluster.head_node.node_id


def _worker_node(cluster: Cluster):
    (node,) = cluster.worker_nodes
    return node


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting {WAIT_S} s for {what}"
        time.sleep(0.1)


def _in_background(stage: Callable[[], Any]) -> Callable[[], Any]:
    """Run ``stage`` on a thread (the main thread stays free for the Cluster API); join returns its result."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = stage()
        except BaseException as exc:  # noqa: BLE001 — re-raised on the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> Any:
        thread.join(4 * WAIT_S)
        assert not thread.is_alive(), f"the stage did not finish within {4 * WAIT_S} s"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]
    return join


# ---- per-clip work --------------------------------------------------------------------------------

def _square(item: int, markers: Path | None, seconds: float) -> int:
    """A clip's work: mark (item, node) when starting on Ray, take ``seconds``, return item²."""
    if markers is not None:
        (markers / f"{item}.{ray.get_runtime_context().get_node_id()}").touch()
    time.sleep(seconds)
    return item * item


def _started_on(markers: Path) -> dict[int, set[str]]:
    """The nodes each item's task started on (more than one if it was rerun)."""
    found: dict[int, set[str]] = {}
    for marker in markers.iterdir():
        item, node = marker.name.split(".", 1)
        found.setdefault(int(item), set()).add(node)
    return found


def test_map_clips_runs_on_every_node_with_the_in_process_results(cluster, tmp_path):
    items = list(range(8))
    spread = map_clips(functools.partial(_square, markers=tmp_path, seconds=0.5), items, desc="square", workers=0)
    local = map_clips(functools.partial(_square, markers=None, seconds=0), items, desc="square", workers=1)

    assert set().union(*_started_on(tmp_path).values()) == {_head(cluster), _worker_node(cluster).node_id}
    assert [(o.value, o.error) for o in spread] == [(o.value, o.error) for o in local] == [(i * i, None) for i in items]


def test_map_clips_reruns_the_clips_of_a_lost_node_elsewhere(cluster, tmp_path):
    doomed = _worker_node(cluster)
    items = list(range(10))

    join = _in_background(lambda: map_clips(functools.partial(_square, markers=tmp_path, seconds=1.0), items,
                                            desc="square", workers=0))
    _wait_for(lambda: any(doomed.node_id in m.name for m in tmp_path.iterdir()), "a clip on the worker node")
    cluster.remove_node(doomed)
    outcomes = join()

    assert [(o.value, o.error) for o in outcomes] == [(i * i, None) for i in items], "a clip was lost"
    rerun = [item for item, nodes in _started_on(tmp_path).items() if nodes == {doomed.node_id, _head(cluster)}]
    assert rerun, "no clip was running on the lost node, so nothing was retried"


# ---- training -------------------------------------------------------------------------------------

class Toy:
    """A linear model trained by SGD with momentum; ``.step``/``.log``/``.state_dict()`` for run_steps."""

    def __init__(self, lr: float):
        self.model = torch.nn.Linear(3, 1, dtype=torch.float64)
        torch.nn.init.zeros_(self.model.weight), torch.nn.init.zeros_(self.model.bias)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9)
        self.step, self.log = 0, []

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "log": self.log, "model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.step, self.log = int(state["step"]), list(state["log"])

    def train_step(self, seed: int, step: int, global_batch: int, rank: int, world: int) -> float:
        """One step on this rank's rows of the global batch of ``step``, gradients averaged over ranks."""
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        x = torch.randn(global_batch, 3, generator=generator, dtype=torch.float64)
        y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) + 0.3
        loss = torch.nn.functional.mse_loss(self.model(x[rank::world]), y[rank::world])
        self.opt.zero_grad()
        loss.backward()
        ray_train.average_gradients(self.model, world)
        self.opt.step()
        return float(loss.detach())


def _hold(config: dict[str, Any], step: int, rank: int) -> None:
    """At ``hold_at``, until the node is gone: rank 0 says it got there and every rank waits (bounded)."""
    signals = Path(config["signals"]) if config.get("signals") else None
    if signals is None or step != config["hold_at"] or (signals / "removed").exists():
        return
    if rank == 0:
        (signals / "reached").touch()
    deadline = time.monotonic() + WAIT_S
    while not (signals / "removed").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def toy_worker(config: dict[str, Any]) -> None:
    """Ray Train loop; the state records every rank's node and the step this attempt started from."""
    import torch.distributed as dist

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(1)
    toy = Toy(config["lr"])
    state = ray_train.resume_state(config)
    if state is not None:
        toy.load_state_dict(state)
    nodes = [ray.get_runtime_context().get_node_id()] * world
    if world > 1:
        dist.all_gather_object(nodes, nodes[rank])

    def step_fn(step: int) -> dict[str, float]:
        _hold(config, step, rank)
        return {"total": toy.train_step(config["seed"], step, config["global_batch"], rank, world)}

    ray_train.run_steps(toy, config["steps"], step_fn, log_every=1, checkpoint_every=config["checkpoint_every"],
                        digest=config["digest"], rank=rank, desc="toy",
                        extra_state={"nodes": nodes, "started_at": state["step"] if state else 0})


def _fit(storage: Path, num_workers: int, **extra: Any) -> dict[str, Any]:
    # The address comes from the fixture's EAT_RAY_ADDRESS, as a stage's would.
    return ray_train.fit(toy_worker, {**TOY, **extra}, storage=storage, name="toy", digest="toy-v1",
                         steps=TOY["steps"], num_workers=num_workers, threads_per_worker=1,
                         ray=RayConfig(address="local", workers=0))


def _uninterrupted_weights() -> dict[str, torch.Tensor]:
    """The reference: one worker (in this process, without Ray) taking the whole global batch each step."""
    toy = Toy(TOY["lr"])
    for step in range(TOY["steps"]):
        toy.train_step(TOY["seed"], step, TOY["global_batch"], rank=0, world=1)
    return toy.model.state_dict()


def _assert_same_weights(state: dict[str, Any], reference: dict[str, torch.Tensor]) -> None:
    assert state["step"] == TOY["steps"]
    assert not torch.equal(reference["weight"], torch.zeros_like(reference["weight"])), "the toy did not train"
    torch.testing.assert_close(state["model"], reference, rtol=0, atol=TOLERANCE)


def _registered_step(run_dir: Path) -> int:
    """The step of the newest checkpoint Ray Train's controller has recorded (-1: none yet).

    A worker's report() only queues its checkpoint; the controller records it when it next polls the
    workers (every 2 s), and a restart resumes from what it recorded, so the test waits for that.
    """
    try:
        record = json.loads((run_dir / ray_train.RAY_RUN_RECORD).read_text())
        return int(record["latest_checkpoint_result"]["metrics"]["step"])
    except (OSError, ValueError, KeyError, TypeError):   # not written yet, or half written
        return -1


def test_fit_puts_one_worker_per_node_and_matches_one_worker_with_the_same_global_batch(cluster, tmp_path):
    state = _fit(tmp_path, num_workers=2)

    assert sorted(state["nodes"]) == sorted([_head(cluster), _worker_node(cluster).node_id]), state["nodes"]
    _assert_same_weights(state, _uninterrupted_weights())


def test_fit_survives_losing_a_node_and_ends_with_the_uninterrupted_weights(cluster, tmp_path):
    doomed = _worker_node(cluster)
    hold_at = TOY["checkpoint_every"] * 2

    join = _in_background(lambda: _fit(tmp_path / "storage", num_workers=2, signals=str(tmp_path), hold_at=hold_at))
    _wait_for((tmp_path / "reached").exists, f"training to reach step {hold_at}")
    _wait_for(lambda: _registered_step(tmp_path / "storage" / "toy") == hold_at, f"the checkpoint of step {hold_at}")
    cluster.remove_node(doomed)
    (tmp_path / "removed").touch()
    cluster.add_node(num_cpus=1)   # the restarted group needs a second CPU again
    state = join()

    assert state["started_at"] == hold_at, "the restart did not continue from the last checkpoint"
    assert doomed.node_id not in state["nodes"] and _head(cluster) in state["nodes"], state["nodes"]
    _assert_same_weights(state, _uninterrupted_weights())
