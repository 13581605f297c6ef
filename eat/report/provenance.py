"""What a report was built from: git commit (and whether the tree was dirty), a hash of params.yaml, the
data version (dvc.lock's md5 of the data stages' outputs, or the data roots when they are not DVC outputs),
and the machine and wall time of the run (``reports/timings.json``, written by ``make repro``)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from eat.machine import describe
from eat.paths import DATA, TIMINGS

DATA_STAGES = ("synth", "ingest")


@dataclass(frozen=True)
class Provenance:
    commit: str
    dirty: bool | None
    params_sha256: str
    data_version: dict[str, str]
    built: str
    machine: str = ""
    run_time: str = ""

    def lines(self) -> list[str]:
        """Human-readable lines for every report format."""
        state = {True: " (working tree had uncommitted changes)", False: "", None: " (dirty state unknown)"}
        data = ", ".join(f"{k} {v}" for k, v in self.data_version.items()) or "unknown"
        run = [f"run on a {self.machine}" + (f": {self.run_time}" if self.run_time else "")] if self.machine else []
        return [f"git commit {self.commit}{state[self.dirty]}", f"params.yaml sha256 {self.params_sha256[:16]}",
                f"data version: {data}", *run, f"built {self.built}"]


def _git(repo: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=30,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def data_version(dvc_lock: Path, params: dict) -> dict[str, str]:
    """``{output path: md5}`` of the data stages in dvc.lock, else the configured data roots."""
    version: dict[str, str] = {}
    if dvc_lock.is_file():
        stages = (yaml.safe_load(dvc_lock.read_text()) or {}).get("stages", {})
        for stage in DATA_STAGES:
            for out in stages.get(stage, {}).get("outs", []):
                if Path(out["path"]).parts[:1] == DATA.parts:
                    version[out["path"]] = str(out.get("md5", "?"))
    if not version:
        version = {k: str(v) for k, v in (params.get("data") or {}).items() if k.endswith("_root")}
    return version


def run_time(timings: Path) -> str:
    """The stages' recorded wall times (``make repro``'s ``reports/timings.json``) as one line, or ""."""
    if not timings.is_file():
        return ""
    stages = json.loads(timings.read_text()).get("stages", {})
    ran = {k: v for k, v in stages.items() if v.get("outcome") == "ran"}
    if not ran:
        return ""
    kinds = sorted({v.get("cpu", "?") for v in ran.values()})
    total = sum(v["seconds"] for v in ran.values()) / 60
    return f"{len(ran)} stages took {total:.0f} min of wall time ({', '.join(kinds)} CPU; {timings.name})"


def collect(repo: Path | str = ".", params_path: Path | str = "params.yaml",
            dvc_lock: Path | str = "dvc.lock") -> Provenance:
    repo, params_path = Path(repo), Path(params_path)
    commit = (_git(repo, "rev-parse", "HEAD") or "unknown").strip()
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    raw = params_path.read_bytes() if params_path.is_file() else b""
    params = yaml.safe_load(raw) or {} if raw else {}
    return Provenance(commit=commit, dirty=None if status is None else bool(status.strip()),
                      params_sha256=hashlib.sha256(raw).hexdigest(),
                      data_version=data_version(Path(dvc_lock), params),
                      built=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), machine=describe(),
                      run_time=run_time(repo / TIMINGS))
