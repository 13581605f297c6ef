"""``make seeds``: the model stages at N seeds as DVC experiments, one table of each key metric.

Each seed is queued as ``dvc exp run --queue -S seed=<s> -n <name> --single-item <targets>``, then
``dvc exp run --run-all`` runs the queue (each experiment in its own temporary copy of the repository, into
which DVC checks out the targets' inputs from its cache), and ``dvc exp show --json`` gives every
experiment's metrics. ``--single-item`` runs only the target stages, in the order given (``train_latent@osfv``
before ``train_latent@enhanced``): the data stay the committed run's, only the models' seed changes.
``synth`` reads ``seed`` too, so ``--with-upstream`` (``make seeds UPSTREAM=1``) instead re-runs every stage
upstream of the targets whose inputs the seed changes, data included (hours per seed).

The criteria, and the default targets, live in ``configs/verify.yaml``
(section ``seeds``), beside the bands of ``make verify``; each is a reference into a metrics file (see
:mod:`eat.orchestration.verify`) with ``min`` and/or ``max``, or ``committed_abs`` / ``committed_rel`` (within
that much of the value committed at HEAD), or an ordering (``greater`` > ``than`` + ``margin``, its value
the difference), or none of these (reported, not judged).

The table (``reports/seeds/table.md`` and ``table.json``) has one row per criterion: each seed's value, mean,
min, max, and pass when every seed ran and meets the criterion. The experiments stay in the repository
(``dvc exp show``, ``dvc exp apply <name>``, ``dvc exp remove <name>``); ``--run-all`` also runs any
experiment queued before. The default seeds are params.yaml's ``seed`` (whose experiment re-runs nothing if
the workspace is up to date: it reports the workspace's run) followed by 1, 2, ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from eat.config import ConfigError
from eat.orchestration.dag import plan
from eat.orchestration.runner import stage_env
from eat.orchestration.verify import (
    MISSING,
    Loader,
    VerifyConfig,
    fmt,
    git_loader,
    load_config,
    references,
    resolve,
)
from eat.paths import SEEDS, VERIFY_CONFIG

DEFAULT_TARGETS = ("train_sync_expert", "train_emotion_classifier", "train_speech_recognizer",
                   "train_latent@osfv", "train_latent@enhanced")


@dataclass
class SeedRun:
    """One seed's experiment: its name, how it ended, and the metrics files as ``dvc exp show`` reports them."""

    seed: int
    name: str
    state: str                                      # success | failed | missing (not in dvc exp show) | ...
    metrics: dict[str, Any] = field(default_factory=dict)


# --- the DVC part ---------------------------------------------------------------------------------------------

def dvc_command() -> str:
    """The ``dvc`` beside this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).with_name("dvc")
    return str(beside) if beside.exists() else (shutil.which("dvc") or "dvc")


def dvc_env() -> dict[str, str]:
    """This venv first on PATH (stages call ``python``), DVC analytics off."""
    return stage_env()


def experiment_name(seed: int, sweep: str) -> str:
    return f"seed{seed}-{sweep}"


def run_sweep(root: Path, seeds: Sequence[int], targets: Sequence[str], *, jobs: int = 1, param: str = "seed",
              single_item: bool = True, copy_paths: Sequence[str] = (), sweep: str | None = None,
              run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> list[SeedRun]:
    """Queue one DVC experiment per seed on ``targets``, run the queue, return each seed's metrics.

    ``root`` is the repository (git + DVC) whose HEAD the experiments branch from; uncommitted changes to
    tracked files go with them, and ``copy_paths`` (git-ignored or untracked paths, e.g. ``weights``) are
    copied in. ``single_item``: run only the targets (``dvc exp run --single-item``), else their changed
    upstream too. Raises :class:`RuntimeError` when queueing or ``dvc exp show`` fails; an experiment that
    fails to run comes back with state ``failed`` (and no metrics).
    """
    root = Path(root).resolve()
    sweep = sweep or datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    dvc, env = dvc_command(), dvc_env()
    # the experiments' baseline: `dvc exp show` lists those of HEAD only, and HEAD may move while they run
    baseline = run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    names = {}
    for seed in seeds:
        name = experiment_name(seed, sweep)
        cmd = [dvc, "exp", "run", "--queue", "-S", f"{param}={seed}", "-n", name,
               *(["--single-item"] if single_item else []), *(a for p in copy_paths for a in ("-C", p)), *targets]
        print("$ " + " ".join(cmd[1:]), flush=True)
        if run(cmd, cwd=root, env=env, check=False).returncode != 0:
            raise RuntimeError(f"could not queue the experiment for seed {seed}: {' '.join(cmd[1:])} failed")
        names[name] = seed
    cmd = [dvc, "exp", "run", "--run-all", "-j", str(jobs)]
    print("$ " + " ".join(cmd[1:]), flush=True)
    run(cmd, cwd=root, env=env, check=False)     # exits 0 even when an experiment failed: the states below tell
    return collect_runs(root, seeds, sweep, baseline, run=run)


def collect_runs(root: Path, seeds: Sequence[int], sweep: str, baseline: str,
                 run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> list[SeedRun]:
    """Each seed's experiment of ``sweep`` (branched from the commit ``baseline``) as ``dvc exp show`` reports it;
    raises :class:`RuntimeError` when that fails."""
    shown = run([dvc_command(), "exp", "show", "--json", "--rev", baseline], cwd=root, env=dvc_env(),
                capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        raise RuntimeError(f"dvc exp show --json failed: {shown.stderr.strip()[-2000:]}")
    found = experiments_by_name(json.loads(shown.stdout))
    names = {experiment_name(seed, sweep): seed for seed in seeds}
    return [SeedRun(seed, name, *found.get(name, ("missing", {}))) for name, seed in names.items()]


def experiments_by_name(shown: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """``dvc exp show --json`` (DVC 3) → experiment name → (state, {metrics file: its data})."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for baseline in shown if isinstance(shown, list) else []:
        for exp in baseline.get("experiments") or []:
            revs = exp.get("revs") or []
            head = revs[0] if revs else {}
            name = exp.get("name") or head.get("name")
            executor = exp.get("executor") or {}
            state = executor.get("state") or ("failed" if head.get("error") else "success")
            if state != "success":
                found[name] = (state, {})    # a failed run shows its baseline's metrics: not this seed's
                continue
            metrics = {file: entry.get("data") for file, entry in ((head.get("data") or {}).get("metrics") or {})
                       .items() if isinstance(entry, Mapping) and "data" in entry}
            found[name] = (state, metrics)
    return found


# --- the table ------------------------------------------------------------------------------------------------

def _judged(entry: Mapping[str, Any]) -> bool:
    return any(k in entry for k in ("min", "max", "committed_abs", "committed_rel", "greater"))


def criterion_text(entry: Mapping[str, Any], committed: Any) -> str:
    parts = []
    if "greater" in entry:
        parts.append("greater − than > " + fmt(float(entry.get("margin", 0))))
    if "min" in entry:
        parts.append(f"≥ {fmt(float(entry['min']))}")
    if "max" in entry:
        parts.append(f"≤ {fmt(float(entry['max']))}")
    for key, unit in (("committed_abs", ""), ("committed_rel", "%")):
        if key in entry:
            tol = float(entry[key]) * (100 if unit else 1)
            parts.append(f"within ±{fmt(tol)}{unit} of committed {fmt(committed)}")
    return ", ".join(parts) or "reported only"


def value_of(entry: Mapping[str, Any], load: Loader) -> Any:
    if "greater" in entry:
        file = entry.get("file")
        g, t = resolve(entry["greater"], load, file), resolve(entry["than"], load, file)
        if g is MISSING or t is MISSING:
            return MISSING
        return None if g is None or t is None else g - t
    return resolve(entry, load)


def passes(entry: Mapping[str, Any], value: Any, committed: Any) -> bool:
    if value is MISSING or value is None or not math.isfinite(value):
        return False
    ok = True
    if "greater" in entry:
        ok &= value > float(entry.get("margin", 0))
    if "min" in entry:
        ok &= value >= float(entry["min"])
    if "max" in entry:
        ok &= value <= float(entry["max"])
    for key, relative in (("committed_abs", False), ("committed_rel", True)):
        if key in entry:
            if committed is MISSING or committed is None:
                return False
            tol = float(entry[key]) * (abs(committed) if relative else 1)
            ok &= abs(value - committed) <= tol + 1e-12
    return bool(ok)


def criterion_files(entry: Mapping[str, Any]) -> set[str]:
    """The metrics files a criterion reads (``file``, or the ``greater`` / ``than`` sides of an ordering)."""
    return {e["file"] for e in (entry, entry.get("greater") or {}, entry.get("than") or {}) if "file" in e}


def target_outputs(root: Path, targets: Sequence[str]) -> set[str]:
    """Paths (relative to ``root``) that the target stages write, metrics files included."""
    return {path for stage in plan(root, targets) if stage.name in targets for path in stage.paths}


def measured_by(criteria: Sequence[Mapping[str, Any]], outputs: set[str]) -> tuple[list, list[str]]:
    """(criteria whose every file the targets write, names of the others): an experiment carries its baseline's
    copy of every other metrics file, the same at each seed, which says nothing about the seed."""
    kept = [c for c in criteria if criterion_files(c) <= outputs]
    return kept, [c["name"] for c in criteria if c not in kept]


def seed_table(runs: Sequence[SeedRun], criteria: Sequence[Mapping[str, Any]], committed: Loader) -> dict[str, Any]:
    """One row per criterion: value per seed, mean, min, max, pass (every seed ran and met it)."""
    rows = []
    for entry in criteria:
        needs_committed = any(k in entry for k in ("committed_abs", "committed_rel"))
        base = value_of(entry, committed) if needs_committed else MISSING
        values: dict[str, Any] = {}
        failed_seeds = []
        for r in runs:
            v = value_of(entry, _metrics_loader(r.metrics)) if r.state == "success" else MISSING
            values[str(r.seed)] = None if v is MISSING else v
            if _judged(entry) and not passes(entry, v, base):
                failed_seeds.append(r.seed)
        numbers = [v for v in values.values() if isinstance(v, float) and math.isfinite(v)]
        rows.append({
            "name": entry["name"],
            "criterion": criterion_text(entry, base),
            "committed": None if base is MISSING else base,
            "values": values,
            "mean": sum(numbers) / len(numbers) if numbers else None,
            "min": min(numbers) if numbers else None,
            "max": max(numbers) if numbers else None,
            "pass": (not failed_seeds) if _judged(entry) else None,
            "failed_seeds": failed_seeds,
        })
    return {"seeds": [r.seed for r in runs],
            "experiments": {str(r.seed): {"name": r.name, "state": r.state} for r in runs},
            "rows": rows,
            "all_pass": all(row["pass"] is not False for row in rows) and all(r.state == "success" for r in runs)}


def _metrics_loader(metrics: Mapping[str, Any]) -> Loader:
    return lambda file: MISSING if metrics.get(file) is None else metrics[file]


def _verdict(row: Mapping[str, Any]) -> str:
    if row["pass"] is None:
        return "—"
    if row["pass"]:
        return "pass"
    return "FAIL (seed " + ", ".join(map(str, row["failed_seeds"])) + ")"


def markdown(table: Mapping[str, Any]) -> str:
    seeds = [str(s) for s in table["seeds"]]
    head = ["metric", "criterion", *(f"seed {s}" for s in seeds), "mean", "min", "max", "pass/fail"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table["rows"]:
        cells = [row["name"], row["criterion"], *(fmt(row["values"][s]) for s in seeds),
                 fmt(row["mean"]), fmt(row["min"]), fmt(row["max"]), _verdict(row)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    failed = [f"seed {s} ({e['name']}): {e['state']}" for s, e in table["experiments"].items()
              if e["state"] != "success"]
    notes = [f"\nExperiments that did not succeed: {'; '.join(failed)}."] if failed else []
    if table.get("not_measured"):
        notes.append(f"\nNot measured (no target writes their file): {'; '.join(table['not_measured'])}.")
    return "\n".join(lines + notes) + "\n"


def write_table(table: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "table.md", out / "table.json"
    md.write_text(markdown(table))
    js.write_text(json.dumps(table, indent=2) + "\n")
    return md, js


# --- the command ----------------------------------------------------------------------------------------------

def seeds_config(config: VerifyConfig) -> tuple[str, list[str], list[dict[str, Any]]]:
    """(param, default targets, criteria) from the verify file's ``seeds`` section, checked."""
    section = config.seeds
    param = section.get("param", "seed")
    targets = list(section.get("targets") or DEFAULT_TARGETS)
    criteria = []
    for entry in section.get("criteria") or []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{config.source} seeds.criteria: each entry is a mapping with a name, not {entry!r}")
        if "greater" in entry:
            for side in ("greater", "than"):
                references(entry[side], entry.get("file"))
        else:
            references(entry)
        criteria.append(dict(entry))
    return param, targets, criteria


def default_seeds(root: Path, n: int, param: str = "seed") -> list[int]:
    """params.yaml's seed, then 1, 2, ... up to ``n`` seeds in all."""
    params = yaml.safe_load((root / "params.yaml").read_text()) if (root / "params.yaml").is_file() else {}
    first = (params or {}).get(param)
    seeds = [int(first)] if isinstance(first, int) else []
    extra = 1
    while len(seeds) < n:
        if extra not in seeds:
            seeds.append(extra)
        extra += 1
    return seeds[:n]


def _split(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".")
    parser.add_argument("--config", default=None, help=f"criteria (default: <repo>/{VERIFY_CONFIG}, section seeds)")
    parser.add_argument("-n", "--n", type=int, default=3, help="how many seeds (default 3)")
    parser.add_argument("--seeds", default="", help="explicit seeds, e.g. '20231002,1,2' (overrides -n)")
    parser.add_argument("--targets", default="", help="stages, e.g. 'train_sync_expert train_latent@osfv' "
                                                      "(default: the verify file's seeds.targets)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="experiments at a time (default 1)")
    parser.add_argument("--with-upstream", action="store_true",
                        help="also re-run the stages upstream of the targets that the seed changes (synth: the data)")
    parser.add_argument("--copy-paths", default="", help="git-ignored paths the stages need, e.g. 'weights'")
    parser.add_argument("--out", default=str(SEEDS), help="where table.md and table.json go")
    parser.add_argument("--collect", metavar="SWEEP", default="",
                        help="run nothing: rebuild the table from an earlier sweep's experiments (SWEEP is the "
                             "stamp in their names, seed<s>-SWEEP), e.g. after a criterion changed")
    parser.add_argument("--baseline", default="HEAD", help="with --collect: the commit the sweep branched from")
    args = parser.parse_args(argv)
    root = Path(args.repo).resolve()
    try:
        config = load_config(Path(args.config) if args.config else root / VERIFY_CONFIG)
        param, targets, criteria = seeds_config(config)
    except ConfigError as exc:
        print(f"seeds: {exc}", file=sys.stderr)
        return 2
    targets = _split(args.targets) or targets
    seeds = [int(s) for s in _split(args.seeds)] or default_seeds(root, args.n, param)
    print(f"make seeds: {param} ∈ {seeds} on {' '.join(targets)} as DVC experiments", flush=True)
    try:
        if args.collect:
            baseline = subprocess.run(["git", "rev-parse", args.baseline], cwd=root, capture_output=True, text=True,
                                      check=True).stdout.strip()
            runs = collect_runs(root, seeds, args.collect, baseline)
        else:
            runs = run_sweep(root, seeds, targets, jobs=args.jobs, param=param, single_item=not args.with_upstream,
                             copy_paths=_split(args.copy_paths))
    except RuntimeError as exc:
        print(f"seeds: {exc}", file=sys.stderr)
        return 2
    criteria, unmeasured = measured_by(criteria, target_outputs(root, targets))
    table = seed_table(runs, criteria, git_loader(root))
    table["targets"] = targets
    table["not_measured"] = unmeasured
    table["single_item"] = not args.with_upstream
    out = Path(args.out) if os.path.isabs(args.out) else root / args.out
    md, js = write_table(table, out)
    print("\n" + markdown(table))
    print(f"seeds: wrote {md} and {js} → {'PASS' if table['all_pass'] else 'FAIL'}")
    return 0 if table["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
