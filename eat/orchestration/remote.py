"""``make push`` / ``make pull``: share a run's DVC outputs through one remote, chosen in one place.

Which remote (first that applies):

1. ``EAT_DVC_REMOTE``: a folder, a URL (``s3://…``, ``https://…``) or the name of a remote in DVC's config;
2. DVC's own default remote (``core.remote``), set with ``dvc remote add -d [--local] NAME URL``, e.g. in
   the git-ignored ``.dvc/config.local`` where credentials go too;
3. the local folder :func:`default_folder`: ``${XDG_DATA_HOME:-~/.local/share}/eat-dvc-remote``. It is outside
   every clone (``make clean`` or deleting a clone leaves it), the same for every clone of this user (so a
   second clone pulls what the first pushed), and a data folder rather than ``~/.cache``, which cleaners empty.

Nothing is written to DVC's config: a remote from 1 or 3 is passed to DVC as an in-memory override.
After DVC's push every file dvc.lock names is looked up on the remote, and what it lacks is sent (DVC skips the
files of a directory whose listing the remote has, so a remote that lost one file would stay partial).
DVC's own errors (one per failed file, spread over several lines) become one line that names the remote and
what it lacks; DVC never deletes from the local cache on pull, and this module only adds to it. Outputs marked
``cache: false`` that git does not track reach no remote: push and pull name them and their stages.

    python -m eat.orchestration.remote {where,push,pull} [--repo .] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dvc.config import Config, RemoteConfigError
from dvc.exceptions import CheckoutError, DvcException, FileTransferError
from dvc.lock import LockError
from dvc.logger import set_loggers_level
from dvc.repo import Repo

ENV = "EAT_DVC_REMOTE"
DEFAULT_NAME = "eat-default"
ENV_NAME = "eat-env"
SHOWN = 5
"""How many missing paths a message names before it says "and N more"."""

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class RemoteError(RuntimeError):
    """A push or pull that did not complete; the message is one line meant for the user."""


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    source: str
    """Where the choice came from, as the user would change it."""
    configured: bool
    """True when the remote is in DVC's config (credentials and options come from there)."""

    @property
    def is_local(self) -> bool:
        return not _URL.match(self.url) or self.url.startswith("file://")

    @property
    def folder(self) -> Path:
        return Path(self.url.removeprefix("file://"))

    def overrides(self) -> dict:
        """The in-memory DVC config that makes this the default remote, without writing any file."""
        if self.configured:
            return {"core": {"remote": self.name}}
        return {"core": {"remote": self.name}, "remote": {self.name: {"url": self.url}}}

    def __str__(self) -> str:
        return f"remote '{self.name}' ({self.url}; {self.source})"


def default_folder(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/eat-dvc-remote``, else ``$HOME/.local/share/eat-dvc-remote``."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return Path(base).expanduser() / "eat-dvc-remote"


def resolve(root: Path, env: Mapping[str, str] | None = None) -> Remote:
    """The remote ``make push`` / ``make pull`` use in the DVC project at ``root`` (see the module's doc)."""
    env = os.environ if env is None else env
    config = Config(dvc_dir=str(Path(root) / ".dvc"))
    remotes = config["remote"]
    chosen = env.get(ENV, "").strip()
    if chosen:
        if chosen in remotes:
            return Remote(chosen, str(remotes[chosen]["url"]), f"{ENV}={chosen}, a remote of DVC's config", True)
        url = chosen if _URL.match(chosen) else str((Path(root) / Path(chosen).expanduser()).resolve())
        return Remote(ENV_NAME, url, f"from {ENV}", False)
    name = config["core"].get("remote")
    if name:
        level = next((lv for lv in ("local", "repo", "global", "system")
                      if config.load_one(lv)["core"].get("remote")), "repo")
        where = os.path.relpath(config.files[level], root) if level in ("local", "repo") else config.files[level]
        if name not in remotes:
            raise RemoteError(f"core.remote in {where} names remote '{name}', which DVC's config does not define")
        return Remote(name, str(remotes[name]["url"]), f"core.remote in {where}", True)
    return Remote(DEFAULT_NAME, str(default_folder(env)), f"the default; set {ENV} to change it", False)


@contextmanager
def _open(root: Path, remote: Remote, verbose: bool) -> Iterator:
    """The DVC repository at ``root`` with ``remote`` as its default; DVC's log hushed unless ``verbose``."""
    with set_loggers_level(logging.INFO if verbose else logging.CRITICAL), \
            Repo(str(root), config=remote.overrides()) as repo:
        yield repo


@dataclass(frozen=True)
class Inventory:
    """The cached files this commit's dvc.lock names, and which of them the local cache and the remote hold."""

    files: list[tuple[str, str, object, object]]
    """(workspace path, hash, local cache, remote's store): a directory's files, then its listing (``dir/``)."""
    unlisted: list[str]
    """Directory outputs (``dir/``) whose listing neither place has, so their files are unknown."""
    local: set[tuple[int, str]]
    remote: set[tuple[int, str]]

    def absent(self, remote_too: bool) -> list[str]:
        """Paths held by neither the local cache nor (with ``remote_too``) the remote."""
        return self.unlisted + [path for path, oid, cache, store in self.files
                                if (id(cache), oid) not in self.local
                                and not (remote_too and (id(store), oid) in self.remote)]

    def gaps(self) -> list[tuple[str, str, object, object]]:
        """Files the local cache has and the remote lacks, a directory's listing after its files."""
        return [f for f in self.files if (id(f[2]), f[1]) in self.local and (id(f[3]), f[1]) not in self.remote]

    @property
    def needed(self) -> int:
        return len(self.files) + len(self.unlisted)


def inventory(repo, remote_name: str) -> Inventory:
    """Look up every cached file of the workspace's outputs (a directory's files from its ``.dir`` listing,
    read from the local cache or the remote) in the local cache and on the remote, in batches."""
    locals_: dict[str, object] = {}
    stores: dict[str, object] = {}
    files: list[tuple[str, str, object, object]] = []
    unlisted: list[str] = []
    for out in repo.index.outs:
        info = out.hash_info
        if not out.use_cache or not info or not info.value:
            continue
        cache = locals_.setdefault(out.hash_name, out.cache)
        if out.hash_name not in stores:
            stores[out.hash_name] = repo.cloud.get_remote_odb(remote_name, "push/pull", hash_name=out.hash_name)
        store = stores[out.hash_name]
        path = os.path.relpath(out.fs_path, repo.root_dir)
        if not info.isdir:
            files.append((path, info.value, cache, store))
            continue
        listing = _read_listing([cache, store], info.value)
        if listing is None:
            unlisted.append(f"{path}/")
            continue
        files += [(f"{path}/{entry['relpath']}", entry.get(out.hash_name) or entry["md5"], cache, store)
                  for entry in listing]
        files.append((f"{path}/", info.value, cache, store))
    have: dict[str, set[tuple[int, str]]] = {"local": set(), "remote": set()}
    for side, odbs in (("local", locals_), ("remote", stores)):
        for odb in odbs.values():
            oids = {oid for _, oid, cache, store in files if (cache if side == "local" else store) is odb}
            have[side] |= {(id(odb), oid) for oid in odb.oids_exist(oids)} if oids else set()
    return Inventory(files, unlisted, have["local"], have["remote"])


def unshared(repo) -> list[tuple[str, str]]:
    """(path, stage) of the outputs that no remote carries: ``cache: false`` and not tracked by git (resume
    points marked ``persist``, say). A clone that lacks them re-runs their stages."""
    found = []
    for out in repo.index.outs:
        if not out.use_cache and out.is_in_repo and not repo.scm.is_tracked(out.fs_path):
            found.append((os.path.relpath(out.fs_path, repo.root_dir), out.stage.addressing))
    return found


def _unshared_note(items: list[tuple[str, str]], what: str) -> list[str]:
    if not items:
        return []
    by_stage: dict[str, list[str]] = {}
    for path, stage in items:
        by_stage.setdefault(stage, []).append(path)
    listed = _names([f"{stage} ({', '.join(paths)})" for stage, paths in sorted(by_stage.items())])
    return [f"note: {what} {listed}: their `cache: false` outputs are not in git, so no remote carries them"]


def _read_listing(odbs, oid: str) -> list[dict] | None:
    for odb in odbs:
        if odb.exists(oid):
            with odb.fs.open(odb.oid_to_path(oid), "r") as f:
                return json.load(f)
    return None


def _names(paths: list[str]) -> str:
    more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
    return ", ".join(paths[:SHOWN]) + more


def _first_line(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    return " ".join(text.splitlines()[:2]) or type(exc).__name__


def push(root: Path, remote: Remote, verbose: bool = False) -> list[str]:
    """Send the workspace's cached outputs to ``remote``; returns the summary lines or raises RemoteError."""
    with _open(root, remote, verbose) as repo:
        try:
            count = repo.push(remote=remote.name)
            notes = _unshared_note(unshared(repo), "a clone that pulls will re-run the stages")
            try:
                found = inventory(repo, remote.name)
            except RemoteConfigError:  # a version-aware or worktree remote has no object store to check
                return [f"pushed {count} files to {remote}", *notes]
            # DVC takes a directory's files as pushed when the remote has the directory's listing, so a remote
            # that lost a file stays partial: send every file the remote lacks.
            repaired = found.gaps()
            for _, oid, cache, store in repaired:
                store.add(cache.oid_to_path(oid), cache.fs, oid, check_exists=False)
        except LockError as exc:
            raise RemoteError(f"push to {remote} did not start: another DVC process holds {root}'s lock "
                              "(a running `make repro`?); run it again when that ends") from exc
        except (DvcException, ImportError, OSError) as exc:  # ImportError: the remote's plugin (dvc-s3, …)
            raise RemoteError(f"push to {remote} failed: {_first_line(exc)}") from exc
    missing = found.absent(remote_too=True)
    sent = count + len(repaired)
    if missing:
        raise RemoteError(f"push to {remote} is incomplete: neither the local cache nor the remote has "
                          f"{len(missing)} of the {found.needed} files dvc.lock names: {_names(missing)}; run "
                          f"`make repro` (or `make pull` from a remote that has them) and push again ({sent} other "
                          "files were pushed)")
    if not sent:
        return [f"{remote} already has all {found.needed} files", *notes]
    fixed = f", {len(repaired)} of them missing under directories it had" if repaired else ""
    return [f"pushed {sent} files to {remote}{fixed}; it has all {found.needed} files dvc.lock names", *notes]


def pull(root: Path, remote: Remote, verbose: bool = False) -> list[str]:
    """Fetch and check out the workspace's outputs from ``remote``; returns the summary lines or raises RemoteError.

    A local folder that does not exist stops before DVC starts. When DVC fails, each needed file is looked
    up in the local cache and on the remote, and the message names the ones neither has."""
    if remote.is_local and not remote.folder.is_dir():
        raise RemoteError(f"pull from {remote} failed: that folder does not exist, so nothing was ever pushed "
                          f"there; run `make push` in the clone that has the run, or set {ENV} to the remote "
                          "that has it (the local cache is untouched)")
    with _open(root, remote, verbose) as repo:
        try:
            result = repo.pull(remote=remote.name)
            absent_here = [(path, stage) for path, stage in unshared(repo) if not (Path(root) / path).exists()]
        except LockError as exc:
            raise RemoteError(f"pull from {remote} did not start: another DVC process holds {root}'s lock "
                              "(a running `make repro`?); run it again when that ends") from exc
        except (FileTransferError, CheckoutError) as exc:
            found = inventory(repo, remote.name)
            missing, needed = found.absent(remote_too=True), found.needed
            if not missing:
                raise RemoteError(f"pull from {remote} failed: {_first_line(exc)} (nothing in the local cache "
                                  "was removed)") from exc
            raise RemoteError(f"pull from {remote} is incomplete: the remote lacks {len(missing)} of the {needed} "
                              f"files this commit's dvc.lock needs: {_names(missing)}; push them from the clone "
                              f"that made them (`make push` there) or set {ENV} to a remote that has them "
                              "(nothing in the local cache was removed)") from exc
        except (DvcException, ImportError, OSError) as exc:  # ImportError: the remote's plugin (dvc-s3, …)
            raise RemoteError(f"pull from {remote} failed: {_first_line(exc)}") from exc
    stats = result.get("stats", {})
    changed = ", ".join(f"{kind} {len(result.get(kind, []))}" for kind in ("added", "modified", "deleted"))
    return [f"pulled from {remote}: fetched {stats.get('fetched', 0)} files; outputs {changed}",
            *_unshared_note(absent_here, "`dvc repro` will still run the stages")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eat.orchestration.remote", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["where", "push", "pull"])
    parser.add_argument("--repo", type=Path, default=Path("."), help="the DVC project (default: here)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show DVC's own log lines too")
    args = parser.parse_args(argv)
    root = args.repo.resolve()
    try:
        remote = resolve(root)
        if args.command == "where":
            print(remote)
            return 0
        print(f"{args.command}: {remote}", flush=True)
        lines = (push if args.command == "push" else pull)(root, remote, verbose=args.verbose)
    except RemoteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
