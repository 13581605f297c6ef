"""Faults a long run meets (issue 19, item 2): each ends in a clear message, nothing lost or half-written, and a
resume.

* a second ``make repro`` while one runs: it stops at DVC's lock with one line; the first run finishes intact;
* the disk filling up mid-stage (a 1 MiB tmpfs): the atomic writer keeps the previous file and leaves no
  temporary; a stage whose outputs no longer fit in the DVC cache fails naming the cause, no cache object is
  corrupt, and the run resumes once there is space;
* a read-only dataset root (a read-only bind mount): ingest and normalise read it without writing into it;
* the Prefect server stopping mid-flow: the running stage still finishes in DVC, the flow ends with one line,
  and the next run resumes after that stage (in ephemeral mode, no server needed);
* SIGINT during ``eat batch``: exit 130, one line, finished videos whole and recorded, no partial file; the
  same command again makes only the other rows.

Disk and read-only faults use real mounts when the tests run as root with ``mount`` allowed (the usual
container); otherwise the disk fault is simulated and the read-only one uses file modes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import skimage.data
import soundfile as sf
import yaml

from eat.generate.batch import INPUTS, done_before, read_rows
from eat.io.atomic import write_text_atomic
from eat.orchestration.dag import DvcBusy, pending_changes
from eat.orchestration.repro import load_timings, will_run
from eat.orchestration.repro import main as repro_main
from eat.orchestration.runner import dvc_executable, repro_stage, stage_env
from eat.preprocess import stages
from eat.preprocess.ingest import ingest
from eat.preprocess.probe import probe_media
from tests.conftest import REPO, micro_params
from tests.fault_corpus import CASES, build_corpus
from tests.flow_toy import make_toy_repo
from tests.prefect_server import prefect_server

WAIT_S = 120

# A stage command that says it started, then holds until the test creates ``go``; it counts its runs.
BLOCK_PY = """\
import pathlib, sys, time
name = sys.argv[1]
pathlib.Path("counts").mkdir(exist_ok=True)
with open(f"counts/{name}", "a") as counter:
    counter.write("x")
pathlib.Path(f"{name}.started").touch()
while not pathlib.Path("go").exists():
    time.sleep(0.05)
pathlib.Path(f"{name}.txt").write_text(name)
"""


def _blocking_repo(root: Path, *names: str) -> Path:
    """The toy DVC project with a chain of blocking stages: each depends on the previous one's output."""
    repo = make_toy_repo(root)
    (repo / "block.py").write_text(BLOCK_PY)
    stages_yaml = {name: {"cmd": f"python block.py {name}", "deps": ["block.py"] + ([f"{prev}.txt"] if prev else []),
                          "outs": [f"{name}.txt"]} for prev, name in zip((None, *names), names, strict=False)}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages_yaml}, sort_keys=False))
    return repo


def _runs(repo: Path, name: str) -> int:
    counter = repo / "counts" / name
    return len(counter.read_text()) if counter.exists() else 0


def _start(command: list[str], log: Path, **kwargs) -> subprocess.Popen:
    """Start ``command`` with stdout and stderr into ``log`` (a pipe nobody reads yet could fill and block it)."""
    with open(log, "w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True, **kwargs)


def _default_sigint() -> None:
    """In the child: SIGINT back to its default. An ignored SIGINT is inherited (another test of the session may
    leave it ignored in pytest's process), and Python then installs no KeyboardInterrupt handler at all."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(path: Path, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        assert proc.poll() is None, f"exited with {proc.returncode} before {path.name}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {path} after {WAIT_S} s"
        time.sleep(0.02)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _mount(*args: str) -> str | None:
    """Run ``mount args``; None on success, else why it failed."""
    try:
        proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return "no mount command"
    return None if proc.returncode == 0 else proc.stderr.strip() or f"mount exited with {proc.returncode}"


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[str | None]:
    """A tmpfs of ``size`` at ``folder``; yields None, or why none could be mounted (then ``folder`` is plain)."""
    folder.mkdir(parents=True, exist_ok=True)
    failed = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    try:
        yield failed
    finally:
        if not failed:
            subprocess.run(["umount", str(folder)], check=True)


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` read-only for this process: a read-only bind mount onto itself (root ignores file modes), else
    file modes (a normal user); skips the test where neither applies."""
    if os.geteuid() != 0:
        dirs = [folder, *(p for p in folder.rglob("*") if p.is_dir())]
        for d in dirs:
            d.chmod(0o555)
        try:
            yield
        finally:
            for d in dirs:
                d.chmod(0o755)
        return
    failed = _mount("--bind", str(folder), str(folder))
    if failed:
        pytest.skip(f"running as root, where file modes do not stop writes, and a bind mount failed: {failed}")
    try:
        failed = _mount("-o", "remount,bind,ro", str(folder))
        if failed:
            pytest.skip(f"running as root and a read-only remount failed: {failed}")
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


# --- a second make repro --------------------------------------------------------------------------------------------

def test_a_second_make_repro_stops_at_dvcs_lock_in_one_line_and_the_first_finishes(tmp_path):
    repo = _blocking_repo(tmp_path / "toy", "slow")
    repro, log = [sys.executable, "-m", "eat.orchestration.repro"], tmp_path / "first.log"  # what make repro runs
    first = _start(repro, log, cwd=repo, env=stage_env())
    try:
        _wait_for(repo / "slow.started", first, log)
        second = subprocess.run(repro, cwd=repo, env=stage_env(), capture_output=True, text=True, timeout=WAIT_S,
                                check=False)
        with pytest.raises(DvcBusy, match=r"stage 'slow': another DVC process holds the lock"):
            repro_stage(repo, "slow", stage_env(), on_line=lambda _stream, _line: None)   # a run that got past status
    finally:
        (repo / "go").touch()
        first.wait(timeout=WAIT_S)
    assert second.returncode == 1 and "Traceback" not in second.stderr
    [line] = _lines(second.stderr)
    assert re.fullmatch(rf"make repro: another DVC process is running in {re.escape(str(repo))} \(.*slow\.txt' is "
                        r"busy, it is being blocked by: \(PID \d+\): .*dvc repro --single-item slow.*\); this run "
                        r"stops here \(what it finished is kept\): run make repro again once the other run has "
                        r"finished", line), line
    assert first.returncode == 0, log.read_text()
    assert "[1/1] slow ran in" in log.read_text()
    assert (repo / "slow.txt").read_text() == "slow" and _runs(repo, "slow") == 1
    assert load_timings(repo / "reports" / "timings.json")["slow"]["outcome"] == "ran"
    assert will_run(repo) == {"slow": False}, "the first run's outputs and dvc.lock are complete"


# --- a full disk ----------------------------------------------------------------------------------------------------

def _no_space(monkeypatch) -> None:
    """Simulate a full disk: writing a temporary writes half of it, then fails as the kernel does."""
    real = Path.write_text

    def write_text(self, text, *args, **kwargs):
        if not self.name.endswith(".partial"):
            return real(self, text, *args, **kwargs)
        real(self, text[:len(text) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", write_text)


def test_a_full_disk_keeps_the_previous_file_leaves_no_temporary_and_a_rerun_with_space_writes(tmp_path,
                                                                                              monkeypatch):
    disk, big = tmp_path / "disk", "x" * (2 << 20)
    with tmpfs(disk, "1m") as no_tmpfs:
        target = disk / "metrics.json"
        write_text_atomic(target, '{"loss": 1}\n')
        if no_tmpfs:
            _no_space(monkeypatch)
        with pytest.raises(OSError) as failure:
            write_text_atomic(target, big)
        assert failure.value.errno == errno.ENOSPC and "No space left on device" in str(failure.value)
        assert target.read_text() == '{"loss": 1}\n' and [p.name for p in disk.iterdir()] == ["metrics.json"]

        if no_tmpfs:
            monkeypatch.undo()
        else:
            subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        write_text_atomic(target, big)
        assert target.read_text() == big and [p.name for p in disk.iterdir()] == ["metrics.json"]


def test_a_full_disk_error_names_the_file_being_written(tmp_path, monkeypatch):
    _no_space(monkeypatch)
    with pytest.raises(OSError) as failure:
        write_text_atomic(tmp_path / "metrics.json", "{}\n")
    assert "metrics.json" in str(failure.value)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_a_full_dvc_cache_fails_the_stage_with_the_cause_corrupts_nothing_and_resumes_with_space(tmp_path,
                                                                                               capsys):
    repo = make_toy_repo(tmp_path / "toy")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"big": {
        "cmd": "python -c \"import pathlib; pathlib.Path('big.bin').write_bytes(bytes(range(256)) * 8192)\"",
        "outs": ["big.bin"]}}}))                                    # 2 MiB, into a 1 MiB cache
    cache = tmp_path / "cache"
    with tmpfs(cache, "1m") as no_tmpfs:
        if no_tmpfs:
            pytest.skip(f"a full disk in DVC's own writes needs a small tmpfs: {no_tmpfs}")
        subprocess.run([dvc_executable(), "cache", "dir", str(cache)], cwd=repo, check=True)

        assert repro_main(["--repo", str(repo)]) == 1
        err = capsys.readouterr().err
        assert re.search(r"(?s)make repro: stage 'big' failed .*No space left on device: "
                         rf"'{re.escape(str(repo / 'big.bin'))}' -> '{re.escape(str(cache))}/", err), err
        objects = [p for p in cache.rglob("*") if p.is_file() and not p.name.startswith(".")]
        assert objects == [], "a cache object under its hash name would have to be complete"
        assert will_run(repo) == {"big": True}, "the failed stage is not recorded in dvc.lock"

        subprocess.run(["mount", "-o", "remount,size=8m", str(cache)], check=True)    # space freed
        assert repro_main(["--repo", str(repo)]) == 0
        assert will_run(repo) == {"big": False}
        [obj] = [p for p in cache.rglob("*") if p.is_file() and not p.name.startswith(".")]
        assert obj.parent.name + obj.name == _md5(obj) == _md5(repo / "big.bin")


# --- a read-only dataset root ---------------------------------------------------------------------------------------

def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_ingest_and_normalise_read_a_read_only_dataset_root_and_write_nothing_into_it(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    corpus = build_corpus(raw)
    params = corpus.params(workers=1)
    before = _tree(raw)
    with read_only(raw):
        with pytest.raises(OSError, match="Read-only file system|Permission denied"):
            (corpus.mead_root / "probe.txt").write_text("x")
        manifest, quarantine = ingest(params, out)
        normalised = stages.normalise(params, out / "manifest.parquet", out / "normalised", out / "normalised.parquet")
    assert _tree(raw) == before
    keys = {case: expected.key for case, expected in corpus.expected.items()}
    assert set(quarantine.clip_id) == {keys[c] for c, fate in CASES.items() if fate == "ingest"}
    assert set(manifest.clip_id) == {keys[c] for c, fate in CASES.items() if fate != "ingest"}
    assert set(normalised.clip_id) == {keys[c] for c, fate in CASES.items() if fate not in ("ingest", "normalise")}
    assert not any(re.search("Read-only|Permission denied", r) for r in quarantine.reason)


# --- the Prefect server stopping mid-flow ---------------------------------------------------------------------------

@pytest.mark.slow(seconds=35)
def test_prefect_server_stopping_mid_flow_keeps_the_running_stage_and_a_rerun_resumes_after_it(tmp_path):
    repo, log = _blocking_repo(tmp_path / "toy", "first", "second"), tmp_path / "flow.log"
    home = tmp_path / "prefect_home"
    home.mkdir()
    with prefect_server(home) as server:
        env = {**server.env, "PREFECT_CLIENT_MAX_RETRIES": "0"}      # give up at once, not after ≈ 1 min
        flow = _start([sys.executable, "-m", "flows", "--repo", str(repo)], log, cwd=REPO, env=env)
        try:
            _wait_for(repo / "first.started", flow, log)
            server.stop()
        finally:
            (repo / "go").touch()
            flow.wait(timeout=WAIT_S)
    assert flow.returncode == 1, log.read_text()[-3000:]
    [line] = [line for line in log.read_text().splitlines() if line.startswith("Pipeline stopped")]
    assert line.startswith(f"Pipeline stopped: the Prefect API at {server.api_url} stopped answering (ConnectError")
    assert line.endswith("the stages DVC finished are kept (dvc.lock): run make flow again to resume at the first "
                         "unfinished one")
    assert (repo / "first.txt").read_text() == "first" and pending_changes(repo, "first") == []
    assert _runs(repo, "second") == 0

    rerun = subprocess.run([sys.executable, "-m", "flows", "--repo", str(repo)], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=WAIT_S, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"No Prefect server answers at {server.api_url}" in rerun.stderr
    assert (_runs(repo, "first"), _runs(repo, "second")) == (1, 1), "the rerun must start after the finished stage"
    assert pending_changes(repo, "second") == []


# --- SIGINT during eat batch ----------------------------------------------------------------------------------------

HOP = 640


def _speech(n_frames: int) -> np.ndarray:
    t = np.arange(n_frames * HOP) / 16000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 4 * t)) / 2).astype(np.float32)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> dict:
    """Micro models with random weights, a photo, and a 4-row CSV: 12 frames, then 3 rows of 120 frames (long
    enough that the Ctrl-C sent when row 1 is done meets the others unfinished, even on an idle machine)."""
    from eat.generate.random_models import write_random_models

    root = tmp_path_factory.mktemp("batch")
    params = micro_params({"signal": {"window_frames": 5}, "latent": {"pca_components": 8}})
    paths = write_random_models(params, root / "models")
    (root / "params.yaml").write_text(yaml.safe_dump(params.model_dump(mode="json")))
    cv2.imwrite(str(root / "face.png"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    sf.write(root / "short.wav", _speech(12), 16000)
    sf.write(root / "long.wav", _speech(120), 16000)
    command = [sys.executable, "-m", "eat.cli", "batch", "rows.csv", "--params", str(root / "params.yaml"),
               "--checkpoint", str(paths["adaptation"]), "--recognizer", str(paths["recognizer"]), "--device", "cpu",
               "--threads", "1"]
    return {"root": root, "command": command, "frames": [12, 120, 120, 120]}


def _rows_csv(folder: Path) -> None:
    rows = [("short.wav", "happy", "")] + [("long.wav", "sad", "0.5")] * 3
    pd.DataFrame([{"image": "../face.png", "audio": f"../{audio}", "emotion": emotion, "intensity": intensity,
                   "output": f"out/r{i}.mp4"} for i, (audio, emotion, intensity) in enumerate(rows, 1)]
                 ).to_csv(folder / "rows.csv", index=False)


def _stamp(path: Path) -> tuple[int, int]:
    return path.stat().st_ino, path.stat().st_mtime_ns


@pytest.mark.parametrize("workers", ["1", pytest.param("0", marks=pytest.mark.slow(seconds=40), id="ray")])
def test_sigint_during_eat_batch_keeps_finished_rows_and_the_same_command_makes_only_the_rest(batch, workers):
    folder = batch["root"] / f"workers{workers}"
    folder.mkdir()
    _rows_csv(folder)
    outputs = [folder / "out" / f"r{i}.mp4" for i in range(1, 5)]
    command = [*batch["command"], "--workers", workers]
    env, log = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}, batch["root"] / f"workers{workers}.log"
    run = _start(command, log, cwd=folder, env=env, start_new_session=True, preexec_fn=_default_sigint)
    try:
        _wait_for(outputs[0], run, log)            # row 1 is done; the longer rows are being made
        os.killpg(run.pid, signal.SIGINT)          # Ctrl-C: the whole foreground process group
        run.wait(timeout=WAIT_S)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    err = re.sub(r"\x1b\[[0-9;]*[A-Za-z]|\r", "\n", log.read_text())   # the progress bars' cursor moves
    assert run.returncode == 130 and "Traceback" not in err, err
    [line] = [line for line in err.splitlines() if "interrupted" in line]
    found = re.fullmatch(r"eat batch: interrupted: (\d) of 4 rows done; status: rows\.status\.csv \(and \.json\); "
                         r"run the same command again to make the other (\d)", line)
    assert found, line
    status = pd.read_csv(folder / "rows.status.csv", keep_default_na=False)
    done = [o.exists() for o in outputs]
    assert list(status.status) == ["ok" if d else "not done" for d in done]
    assert [r["status"] for r in json.loads((folder / "rows.status.json").read_text())] == list(status.status)
    assert done[0] and not all(done) and int(found.group(1)) == sum(done) and int(found.group(2)) == 4 - sum(done)
    finished = [(o, n) for o, n, d in zip(outputs, batch["frames"], done, strict=True) if d]
    assert sorted(p.name for p in (folder / "out").iterdir()) == [o.name for o, _ in finished], \
        "only finished videos: no partial or temporary file"
    assert all(probe_media(o).n_frames == n for o, n in finished)
    kept = {o: _stamp(o) for o, _ in finished}

    rerun = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=WAIT_S, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"4 of 4 rows ok ({sum(done)} done by an earlier run; --redo makes them again)" in rerun.stdout
    assert {o: _stamp(o) for o in kept} == kept, "a finished row was made again"
    assert [probe_media(o).n_frames for o in outputs] == batch["frames"]
    assert list(pd.read_csv(folder / "rows.status.csv").status) == ["ok"] * 4


def test_a_resumed_batch_keeps_only_ok_rows_with_the_same_inputs_whose_video_is_there(tmp_path):
    _rows_csv(tmp_path)
    rows = read_rows(tmp_path / "rows.csv")
    status = tmp_path / "rows.status.csv"
    records = [{k: row[k] for k in INPUTS if k in row} | {"status": s} for row, s in
               zip(rows, ["ok", "ok", "ok", "not done"], strict=True)]
    records[1]["emotion"] = "angry"                     # row 2 was made with another emotion
    status.with_suffix(".json").write_text(json.dumps(records))
    for row in rows[:3]:
        Path(row["output"]).parent.mkdir(exist_ok=True)
        Path(row["output"]).write_bytes(b"video")
    Path(rows[2]["output"]).unlink()                    # row 3's video is gone
    assert list(done_before(status, rows)) == [1]
    assert done_before(tmp_path / "other.status.csv", rows) == {}
