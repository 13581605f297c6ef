"""`make push` / `make pull` for real: a tiny git + DVC project pushed to a local-folder remote, pulled into a
fresh clone of the same commit, and the failures (no remote folder, a remote missing a file) explained in one line.

Everything runs as the Makefile runs it (``python -m eat.orchestration.remote push|pull`` in the project's
folder), with DVC's global config, site cache and the user's home redirected into the test's folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eat.orchestration.remote import DEFAULT_NAME, ENV, ENV_NAME, Remote, default_folder, resolve
from tests.conftest import REPO

BIN = Path(sys.executable).parent
DVC_YAML = """\
stages:
  make:
    cmd: python make.py
    deps: [make.py]
    outs: [out]
    metrics:
      - metrics.json:
          cache: false
"""
MAKE_PY = """\
import json
from pathlib import Path
with open("runs.log", "a") as log:  # not tracked by DVC: tells whether the command ran
    log.write("ran\\n")
Path("out").mkdir(exist_ok=True)
Path("out/a.txt").write_text("alpha\\n")
Path("out/b.txt").write_text("beta\\n")
Path("metrics.json").write_text(json.dumps({"score": 0.5, "loss": {"train": 0.25}}))
"""


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The environment of every command: the venv first on PATH, nothing read from the user's DVC or home."""
    for d in ("dvc-global", "dvc-system", "dvc-site", "home"):
        (tmp_path / d).mkdir()
    return {
        **{k: v for k, v in os.environ.items() if k not in (ENV, "XDG_DATA_HOME")},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "DVC_NO_ANALYTICS": "1",
        "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc-global"),
        "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "dvc-system"),
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
        "HOME": str(tmp_path / "home"),
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
    }


def _sh(cmd: list[str], cwd: Path, env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if ok:
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _dvc(args: list[str], cwd: Path, env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess:
    return _sh([str(BIN / "dvc"), *args], cwd, env, ok)


def _remote(command: str, cwd: Path, env: dict[str, str], remote: Path | str | None) -> subprocess.CompletedProcess:
    """What `make push` / `make pull` run, with EAT_DVC_REMOTE set to ``remote`` (unset when None)."""
    run_env = {k: v for k, v in env.items() if k != ENV} | ({ENV: str(remote)} if remote is not None else {})
    return _sh([sys.executable, "-m", "eat.orchestration.remote", command], cwd, run_env, ok=False)


@pytest.fixture
def origin(tmp_path, env) -> Path:
    """A git + DVC project with one stage, run and committed (dvc.lock and metrics.json in git)."""
    root = tmp_path / "origin"
    root.mkdir()
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "make.py").write_text(MAKE_PY)
    (root / ".gitignore").write_text("runs.log\n")
    _sh(["git", "init", "-q"], root, env)
    _dvc(["init", "-q"], root, env)
    _dvc(["repro"], root, env)
    _sh(["git", "add", "-A"], root, env)
    _sh(["git", "commit", "-q", "-m", "a run"], root, env)
    return root


def _clone(origin: Path, to: Path, env: dict[str, str]) -> Path:
    _sh(["git", "clone", "-q", str(origin), str(to)], origin.parent, env)
    assert not (to / "out").exists() and _cache(to) == {}, "a clone has no DVC data"
    return to


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _cache(clone: Path) -> dict[str, bytes]:
    cache = clone / ".dvc" / "cache" / "files"
    return _tree(cache) if cache.exists() else {}


def _assert_cache_sound(clone: Path) -> None:
    for rel, data in _cache(clone).items():
        assert hashlib.md5(data).hexdigest() == rel.split("/")[-2] + rel.split("/")[-1].removesuffix(".dir"), rel


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, f"expected a failure:\n{done.stdout}\n{done.stderr}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one line:\n{done.stderr}"
    return lines[0]


def test_push_then_pull_into_a_fresh_clone_reproduces_nothing(tmp_path, env, origin):
    remote = tmp_path / "remote"  # not there yet: the first push makes it
    pushed = _remote("push", origin, env, remote)
    assert pushed.returncode == 0, pushed.stderr
    assert f"pushed 3 files to remote '{ENV_NAME}' ({remote}" in pushed.stdout  # out/a.txt, out/b.txt, out's listing
    assert len(_tree(remote)) == 3
    again = _remote("push", origin, env, remote)
    assert again.returncode == 0 and "already has all 3 files" in again.stdout

    clone = _clone(origin, tmp_path / "clone", env)
    pulled = _remote("pull", clone, env, remote)
    assert pulled.returncode == 0, pulled.stderr
    assert "fetched 3 files; outputs added 1" in pulled.stdout

    repro = _dvc(["repro"], clone, env)
    assert "Stage 'make' didn't change, skipping" in repro.stdout
    assert "Data and pipelines are up to date." in repro.stdout
    assert "Running stage" not in repro.stdout and not (clone / "runs.log").exists(), "the stage ran again"
    assert _dvc(["status"], clone, env).stdout.strip() == "Data and pipelines are up to date."
    diff = _dvc(["metrics", "diff"], clone, env)
    assert diff.stdout.strip() == "" and diff.stderr.strip() == ""
    assert _dvc(["metrics", "diff", "--json"], clone, env).stdout.strip() in ("", "{}")
    assert _tree(clone / "out") == _tree(origin / "out") == {"a.txt": b"alpha\n", "b.txt": b"beta\n"}
    assert (clone / "metrics.json").read_bytes() == (origin / "metrics.json").read_bytes()
    assert _cache(clone).items() <= _cache(origin).items()  # the origin's also keeps metrics.json (run-cache)


def test_a_missing_remote_folder_is_one_line_and_leaves_the_cache(tmp_path, env, origin):
    nowhere = tmp_path / "no-such-remote"
    clone = _clone(origin, tmp_path / "clone", env)
    line = _one_line_error(_remote("pull", clone, env, nowhere))
    assert f"remote '{ENV_NAME}' ({nowhere}; from {ENV})" in line and "does not exist" in line
    assert "make push" in line and not nowhere.exists() and _cache(clone) == {}

    # a clone with a full cache: a pull from nowhere names it and leaves cache and workspace as they were
    before_cache, before_out = _cache(origin), _tree(origin / "out")
    line = _one_line_error(_remote("pull", origin, env, nowhere))
    assert str(nowhere) in line and "does not exist" in line
    assert _cache(origin) == before_cache and _tree(origin / "out") == before_out


def test_a_partial_remote_names_what_it_lacks_and_keeps_the_cache(tmp_path, env, origin):
    remote = tmp_path / "remote"
    assert _remote("push", origin, env, remote).returncode == 0
    b_md5 = hashlib.md5(b"beta\n").hexdigest()
    (remote / "files" / "md5" / b_md5[:2] / b_md5[2:]).unlink()  # the remote lost out/b.txt

    clone = _clone(origin, tmp_path / "clone", env)
    line = _one_line_error(_remote("pull", clone, env, remote))
    assert f"remote '{ENV_NAME}' ({remote}; from {ENV}) is incomplete" in line
    assert "lacks 1 of the 3 files" in line and line.count("out/b.txt") == 1 and "out/a.txt" not in line
    fetched = _cache(clone)
    a_md5 = hashlib.md5(b"alpha\n").hexdigest()
    assert fetched == {f"md5/{a_md5[:2]}/{a_md5[2:]}": b"alpha\n"}, "the file the remote has is fetched"
    _assert_cache_sound(clone)

    again = _one_line_error(_remote("pull", clone, env, remote))
    assert again == line and _cache(clone) == fetched, "a failed pull removes nothing from the local cache"

    # the clone that made it pushes again: DVC alone would skip the lost file (the remote has out's listing)
    repushed = _remote("push", origin, env, remote)
    assert repushed.returncode == 0 and "pushed 1 files" in repushed.stdout, repushed.stdout + repushed.stderr
    assert "1 of them missing under directories it had" in repushed.stdout
    assert _remote("pull", clone, env, remote).returncode == 0
    assert _tree(clone / "out") == _tree(origin / "out")
    assert "didn't change, skipping" in _dvc(["repro"], clone, env).stdout


def test_push_from_a_clone_without_the_data_names_what_is_nowhere(tmp_path, env, origin):
    clone = _clone(origin, tmp_path / "clone", env)
    line = _one_line_error(_remote("push", clone, env, tmp_path / "empty"))
    assert "neither the local cache nor the remote has 1 of the 1 files dvc.lock names: out/;" in line
    assert "make repro" in line

    remote = tmp_path / "remote"  # a remote that has it all: nothing to push, nothing missing
    assert _remote("push", origin, env, remote).returncode == 0
    done = _remote("push", clone, env, remote)
    assert done.returncode == 0 and "already has all 3 files" in done.stdout, done.stdout + done.stderr


def test_outputs_no_remote_carries_are_named_on_push_and_pull(tmp_path, env, origin):
    """A `cache: false` output that git ignores (a `persist` resume point, say) is in no remote: say so."""
    (origin / "dvc.yaml").write_text(
        DVC_YAML.replace("cmd: python make.py", "cmd: python make.py && echo resume > state.pt")
        .replace("    outs: [out]\n", "    outs:\n      - out\n      - state.pt:\n          persist: true\n"
                                      "          cache: false\n"))
    with open(origin / ".gitignore", "a") as ignore:
        ignore.write("/state.pt\n")
    _dvc(["repro"], origin, env)
    _sh(["git", "add", "-A"], origin, env)
    _sh(["git", "commit", "-q", "-m", "a resume point"], origin, env)
    remote = tmp_path / "remote"
    pushed = _remote("push", origin, env, remote)
    assert pushed.returncode == 0, pushed.stderr
    assert "note: a clone that pulls will re-run the stages make (state.pt)" in pushed.stdout

    clone = _clone(origin, tmp_path / "clone", env)
    pulled = _remote("pull", clone, env, remote)
    assert pulled.returncode == 0, pulled.stderr
    assert "note: `dvc repro` will still run the stages make (state.pt)" in pulled.stdout
    assert "deleted:            state.pt" in _dvc(["status"], clone, env).stdout


def test_the_remote_is_chosen_in_one_place(tmp_path, env, origin, monkeypatch):
    for key in ("DVC_GLOBAL_CONFIG_DIR", "DVC_SYSTEM_CONFIG_DIR"):  # read by DVC's Config from os.environ
        monkeypatch.setenv(key, env[key])
    home = Path(env["HOME"])
    assert default_folder({"HOME": str(home)}) == home / ".local" / "share" / "eat-dvc-remote"
    assert default_folder({"HOME": str(home), "XDG_DATA_HOME": "/data"}) == Path("/data/eat-dvc-remote")

    def where(**extra: str) -> Remote:
        return resolve(origin, {"HOME": str(home), **extra})

    default = where()
    assert (default.name, default.url, default.configured) == (DEFAULT_NAME, str(default_folder(env)), False)
    assert default.is_local and default.overrides() == {
        "core": {"remote": DEFAULT_NAME}, "remote": {DEFAULT_NAME: {"url": str(default_folder(env))}}}
    assert where(**{ENV: "elsewhere"}).url == str(origin / "elsewhere"), "a relative folder is the project's"
    assert where(**{ENV: "s3://bucket/eat"}).url == "s3://bucket/eat"

    _dvc(["remote", "add", "--local", "-d", "team", "https://example.org/eat-dvc"], origin, env)
    _dvc(["remote", "add", "--local", "mine", str(tmp_path / "mine")], origin, env)
    team = where()
    assert (team.name, team.url, team.configured, team.is_local) == ("team", "https://example.org/eat-dvc", True, False)
    assert team.source == f"core.remote in {os.path.join('.dvc', 'config.local')}"
    assert team.overrides() == {"core": {"remote": "team"}}
    mine = where(**{ENV: "mine"})
    assert (mine.name, mine.url, mine.configured) == ("mine", str(tmp_path / "mine"), True), "the variable wins"
    assert "config.local" not in _sh(["git", "status", "--porcelain"], origin, env).stdout, "config.local is ignored"

    # the Makefile's targets call this module (make -n runs nothing)
    if shutil.which("make"):
        for target in ("push", "pull"):
            plan = _sh(["make", "--no-print-directory", "-n", target], REPO, env).stdout.strip().splitlines()
            assert plan[-1].endswith(f"python -m eat.orchestration.remote {target}")
