"""One-time, idempotent set-up of the tools' state inside the repository.

DVC, Prefect and Ray all keep state somewhere; we keep it in the project (or a
path the user sets) and switch every tool's analytics off, so a run never
tries to reach the network and two checkouts never share hidden state.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _dvc(*args: str) -> None:
    dvc = Path(sys.executable).with_name("dvc")
    subprocess.run([str(dvc), *args], cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    if not (REPO / ".dvc").is_dir():
        _dvc("init", "--quiet")
    _dvc("config", "core.analytics", "false")
    _dvc("config", "core.autostage", "false")
    (REPO / ".prefect").mkdir(exist_ok=True)
    (REPO / ".ray").mkdir(exist_ok=True)


if __name__ == "__main__":
    main()
