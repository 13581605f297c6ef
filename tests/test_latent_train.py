"""The latent-model stages on a tiny fixture: Ray Train training resumes after a kill with the same weights as an
uninterrupted run; latent extraction writes Eq. 1-consistent arrays whose frame counts match the clips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from eat.config import deep_merge, read_yaml, write_yaml_atomic
from tests.conftest import REPO
from tests.latent_fixture import FRAMES, STEPS, fixture_overlay, write_latent_fixture
from tests.processes import kill_at_first_checkpoint, resumed_step, run_stage


@pytest.fixture(scope="module")
def fixture_run(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("latent")
    table = write_latent_fixture(root / "clips")
    merged = deep_merge(deep_merge(read_yaml(REPO / "params.yaml"), read_yaml(REPO / "configs" / "micro.yaml")),
                        fixture_overlay())
    write_yaml_atomic(root / "params.yaml", merged)
    return {"root": root, "table": table, "params": root / "params.yaml"}


def _stage(run: dict[str, Path], name: str) -> list[str]:
    return [sys.executable, "-m", "stages.train_latent", "--variant", "enhanced", "--params", str(run["params"]),
            "--pose-table", str(run["table"]), "--out", str(run["root"] / name / "model"),
            "--reports", str(run["root"] / name / "reports")]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    saved = torch.load(path, weights_only=True)
    return {f"{part}.{k}": v for part in ("kp_detector", "he_estimator", "generator") for k, v in saved[part].items()}


@pytest.mark.slow(seconds=120)
def test_killed_training_resumes_to_the_same_weights(fixture_run, ray_head):
    run_stage(_stage(fixture_run, "whole"))             # a local Ray of the stage's own (no address: the default)
    whole = fixture_run["root"] / "whole"
    metrics = json.loads((whole / "reports" / "metrics.json").read_text())
    assert metrics["steps"] == STEPS and metrics["heldout"]["clips"] == 2
    log = pd.read_csv(whole / "reports" / "train_log.csv")
    assert log.step.tolist() == list(range(1, STEPS + 1)) and np.isfinite(log.total).all()
    assert (whole / "reports" / "heldout" / "W009.png").stat().st_size > 1000

    # Kill the second run once its first checkpoint exists, then run it again to the end; both attach to the
    # session's long-lived Ray head, which the killed driver must leave fit for the resumed one.
    killed = fixture_run["root"] / "killed"
    kill_at_first_checkpoint(_stage(fixture_run, "killed"), killed / "model" / "ray" / "enhanced", ray_head)
    assert not (killed / "model" / "model.pt").exists()
    resumed_step(run_stage(_stage(fixture_run, "killed"), ray_head.env), STEPS)

    a, b = _weights(whole / "model" / "model.pt"), _weights(killed / "model" / "model.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run's"
    assert pd.read_csv(killed / "reports" / "train_log.csv").equals(log.drop(columns="seconds_per_step").assign(
        seconds_per_step=pd.read_csv(killed / "reports" / "train_log.csv").seconds_per_step))


@pytest.mark.slow(seconds=20)
def test_extracted_latents_follow_eq1_and_match_frame_counts(fixture_run):
    model = fixture_run["root"] / "whole" / "model" / "model.pt"
    if not model.exists():
        run_stage(_stage(fixture_run, "whole"))
    out = fixture_run["root"] / "latent"
    run_stage([sys.executable, "-m", "stages.extract_latent", "--params", str(fixture_run["params"]),
               "--pose-table", str(fixture_run["table"]), "--model", str(model), "--out-dir", str(out / "clips"),
               "--table", str(out / "latent.parquet")])
    table = pd.read_parquet(out / "latent.parquet")
    assert len(table) == 6
    for path in table.latent:
        with np.load(path) as z:
            assert z["canonical"].shape == (15, 3) and z["expression"].shape == (FRAMES, 15, 3)
            assert z["rotation"].shape == (FRAMES, 3, 3) and z["angles"].shape == (FRAMES, 3)
            rebuilt = z["canonical"] @ z["rotation"].transpose(0, 2, 1) + z["translation"][:, None] + z["expression"]
            assert np.allclose(rebuilt, z["keypoints"], atol=1e-5)
            assert np.allclose(z["rotation"] @ z["rotation"].transpose(0, 2, 1), np.eye(3), atol=1e-5)


def test_recipe_deviations_name_each_key_that_differs_from_the_paper_profile(tmp_path):
    from eat.config import parse_params
    from eat.latent.train import recipe_deviations

    cfg = parse_params(read_yaml(REPO / "params.yaml")).latent_train
    paper = tmp_path / "paper.yaml"
    write_yaml_atomic(paper, {"latent_train": {"steps": 1, "gan_weight": cfg.gan_weight + 1.0,
                                               "perceptual_weights": cfg.perceptual_weights}})
    assert recipe_deviations(cfg, paper) == {"gan_weight": {"here": cfg.gan_weight, "paper": cfg.gan_weight + 1.0}}
    assert recipe_deviations(cfg, tmp_path / "absent.yaml") == {}
    real = recipe_deviations(cfg, REPO / "configs" / "paper.yaml")
    assert "steps" not in real and all(v["here"] != v["paper"] for v in real.values())
