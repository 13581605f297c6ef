"""eat.io.torch_files: a saved model's bytes depend on its contents only, so DVC sees a rerun's output as unchanged."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from eat.io.torch_files import save_torch_atomic
from tests.conftest import REPO

SAVE = ("import sys, torch; from eat.io.torch_files import save_torch_atomic; torch.manual_seed(0); "
        "save_torch_atomic({'w': torch.randn(3, 4), 'steps': 5}, sys.argv[1])")


def test_two_processes_saving_equal_contents_under_different_names_write_the_same_bytes(tmp_path):
    # Each process has its own pid, hence its own temporary name, which torch.save would put inside the archive.
    for name in ("a.pt", "b.pt"):
        subprocess.run([sys.executable, "-c", SAVE, str(tmp_path / name)], cwd=REPO, check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    assert loaded["steps"] == 5 and loaded["w"].shape == (3, 4)
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["a.pt", "b.pt"], "a temporary was left behind"


def test_plain_torch_save_to_a_temporary_name_would_not(tmp_path):
    """The failure the module exists for, shown on torch itself: the archive is named after the file."""
    obj = {"w": torch.zeros(2)}
    torch.save(obj, tmp_path / ".model.pt.1.partial")
    torch.save(obj, tmp_path / ".model.pt.2.partial")
    assert (tmp_path / ".model.pt.1.partial").read_bytes() != (tmp_path / ".model.pt.2.partial").read_bytes()
    save_torch_atomic(obj, tmp_path / "x.pt")
    assert b".model.pt" not in (tmp_path / "x.pt").read_bytes()
