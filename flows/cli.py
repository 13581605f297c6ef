"""Command line of the pipeline flow: ``python -m flows [--profile NAME] [-S key=value ...] [--stages ...]``.

Runs against the Prefect server at ``$PREFECT_API_URL`` when one answers there (``make ui``
starts one at http://127.0.0.1:4200); otherwise in Prefect's ephemeral mode, which needs no
server and records the run in the same ``PREFECT_HOME`` database, so it shows in the UI
when one is started later. Prefect's state stays in the project (``.prefect/``) and its
analytics are off unless the caller set these variables already.

If the server stops answering mid-run (after Prefect's own client retries, ``PREFECT_CLIENT_MAX_RETRIES``),
the command ends with one line saying so and exit status 1. Stages DVC finished are in ``dvc.lock`` and its
cache, so the next run resumes at the first unfinished stage, with or without a server.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import MutableMapping
from pathlib import Path

import httpx


def api_reachable(api_url: str, timeout_s: float = 2.0) -> bool:
    """Whether a Prefect server answers ``GET <api_url>/health``."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def prepare_environment(repo: Path, environ: MutableMapping[str, str] = os.environ) -> str | None:
    """Set Prefect's defaults for this project before Prefect is imported; return the server's API URL or None.

    A ``PREFECT_API_URL`` with no server behind it is dropped (with a note on stderr), so the
    flow falls back to ephemeral mode instead of failing to connect.
    """
    environ.setdefault("PREFECT_HOME", str(repo / ".prefect"))
    environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    environ.setdefault("DVC_NO_ANALYTICS", "1")
    api_url = environ.get("PREFECT_API_URL")
    if api_url and api_reachable(api_url):
        return api_url
    if api_url:
        print(f"No Prefect server answers at {api_url} (start one with `make ui`); "
              f"running in ephemeral mode, recorded in {environ['PREFECT_HOME']}.", file=sys.stderr)
        del environ["PREFECT_API_URL"]
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows", description="Run the DVC pipeline as a Prefect flow.")
    parser.add_argument("--repo", type=Path, default=Path("."), help="project root (default: .)")
    parser.add_argument("--profile", help="merge configs/NAME.yaml into params.yaml first")
    parser.add_argument("-S", "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a params.yaml key (dvc exp run -S syntax); repeatable")
    parser.add_argument("--stages", nargs="+", metavar="STAGE",
                        help="run only these stages and what they depend on (default: all)")
    parser.add_argument("--ray-address", help="Ray cluster for the stages, passed as EAT_RAY_ADDRESS (auto, "
                                              "host:6379, ray://host:10001; default: the stages' own, a local Ray)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repo = args.repo.resolve()
    api_url = prepare_environment(repo)
    from flows.pipeline import pipeline  # local: after the environment is set: Prefect reads it on import

    try:
        state = pipeline(profile=args.profile, overrides=args.overrides, stages=args.stages,
                         ray_address=args.ray_address, repo=str(repo), return_state=True)
    except httpx.HTTPError as err:  # the Prefect API went away (or broke) under the running flow
        print(f"Pipeline stopped: the Prefect API at {api_url or 'the ephemeral server'} stopped answering "
              f"({type(err).__name__}: {err}); the stages DVC finished are kept (dvc.lock): run make flow again "
              "to resume at the first unfinished one", file=sys.stderr)
        return 1
    if api_url:
        print(f"Flow run: {api_url.removesuffix('/api')}/runs/flow-run/{state.state_details.flow_run_id}")
    if state.is_failed():
        print(f"Pipeline failed: {state.message}", file=sys.stderr)
        return 1
    return 0
