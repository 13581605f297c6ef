"""The stage scripts ``train_sync_expert`` and ``train_emotion_classifier`` name a missing input in their error.

That they train and write their model, metrics, timing, log and Ray Train checkpoints is shown by the end-to-end run
of the whole DAG (tests/test_pipeline_e2e.py); their training itself on the supervision fixture by
tests/test_sync_expert_training.py and tests/test_emotion_classifier_training.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("stage", ["train_sync_expert", "train_emotion_classifier"])
def test_stage_script_names_a_missing_input(stage, tmp_path):
    args = [sys.executable, "-m", f"stages.{stage}", "--pose-table", str(tmp_path / "missing.parquet"),
            "--out", str(tmp_path / "m"), "--metrics", str(tmp_path / "m.json")]
    proc = subprocess.run(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, check=False, timeout=300)
    assert proc.returncode == 2 and "missing.parquet" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.json").exists()
