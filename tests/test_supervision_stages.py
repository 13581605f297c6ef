"""The stage scripts ``train_sync_expert`` and ``train_emotion_classifier`` on the supervision fixture
(tests/supervision_fixture.py), attached to the session's Ray head: each trains, writes its model, metrics, timing
and log, and names a missing input in its error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from eat.config import (
    deep_merge,
    read_yaml,
    write_yaml_atomic,
)
from eat.io.arrays import write_npz
from eat.io.video import read_frames
from tests.processes import RAY_TRAIN_FAST_POLL
from tests.supervision_fixture import (
    REPO,
    emotion_cfg,
    sync_cfg,
)


def _stage(args: list[str], ray_env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a stage script attached to the session's Ray head (``ray_env`` = ``ray_head.env``)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0", **RAY_TRAIN_FAST_POLL, **ray_env}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False, timeout=300)


def _stored_at(pose_table: Path, size: int, folder: Path) -> Path:
    """A copy of ``pose_table`` whose npz files hold the frames at ``size``², as crop_align stores them for
    ``signal.image_size = size`` (the stage scripts check the size against params)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.read_parquet(pose_table)
    for i, row in table.iterrows():
        with np.load(row.aligned_arrays) as stored:
            arrays = {**dict(stored), "frames": read_frames(row.aligned, size)}
        table.loc[i, "aligned_arrays"] = str(folder / Path(row.aligned_arrays).name)
        write_npz(table.loc[i, "aligned_arrays"], arrays)
    table.to_parquet(folder / "pose.parquet")
    return folder / "pose.parquet"


def test_stage_scripts_train_on_the_fixture_and_name_a_missing_input(supervision, ray_head):
    root = supervision["root"]
    overlay = {"sync_expert": sync_cfg().model_dump(), "emotion_classifier": emotion_cfg().model_dump()}
    write_yaml_atomic(root / "params.yaml", deep_merge(read_yaml(REPO / "params.yaml"), overlay))
    size = read_yaml(root / "params.yaml")["signal"]["image_size"]
    pose = _stored_at(supervision["pose"], size, root / f"stored_at_{size}")
    common = ["--params", str(root / "params.yaml"), "--pose-table", str(pose)]
    for stage, extra in (("train_sync_expert", ["--audio-table", str(supervision["audio"])]),
                         ("train_emotion_classifier", [])):
        out, metrics = root / "cli" / stage, root / "cli" / f"{stage}-reports" / "metrics.json"
        proc = _stage([f"stages.{stage}", *common, *extra, "--out", str(out), "--metrics", str(metrics)], ray_head.env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"{stage}: 6 steps" in proc.stdout and (out / "model.pt").is_file()
        assert json.loads(metrics.read_text())["steps"] == 6 and metrics.with_name("timing.json").is_file()
        assert metrics.with_name("train_log.csv").is_file() and list((out / "ray").glob("*/checkpoint_*/state.pt"))

        missing = [f"stages.{stage}", "--pose-table", str(root / "missing.parquet"), "--out", str(root / "m"),
                   "--metrics", str(root / "m" / "metrics.json")]
        proc = _stage(missing, ray_head.env)
        assert proc.returncode == 2 and "missing.parquet" in proc.stderr, proc.stderr[-2000:]
