"""``make verify``: did the reproduction reproduce? This run's metrics against the committed ones.

What is compared, and how closely, is declared once in a data file (``configs/verify.yaml``), not here:

- ``metrics``: one key metric each, a dotted path into a metrics JSON file, with an absolute (``abs``) or a
  relative (``rel``, a fraction of the committed value) band. Verdict ``ok`` inside the band, ``OUT OF BAND``
  outside it; ``new`` when the committed file (or the key in it) does not exist, which is not a failure;
  ``MISSING`` when this run has no such file or key.
- ``orderings``: the paper's conclusions, each ``greater`` > ``than`` (+ ``margin``). Verdict ``holds`` or
  ``fails (as committed)`` when the run agrees with the committed one, ``FLIPPED`` when it does not.

"Now" is the file in the working tree (what ``dvc metrics show`` reports after ``make repro``); "committed"
is the same file at ``--rev`` (default ``HEAD``), read with ``git show``. No DVC lock is taken, so it can
run beside a pipeline. Exit status 1 when an ordering flips, a banded metric leaves its band or a metric is
missing (``--strict``: also when an ordering does not hold now); 2 for an invalid verify file.

A value is named by a *reference*: a path (``heldout.psnr_face`` or, for keys that contain dots or for a
list, a YAML list such as ``[tables, {id: T3}, rows, {key: enhanced}, cells, neutral_source.psnr_face]``,
where ``{id: T3}`` picks the list item whose ``id`` is ``T3``, and an integer picks by position) in the
entry's ``file``; or a mapping ``{file: ..., path: ...}`` naming another file; or a mapping with
``ratio: [a, b]`` or ``difference: [a, b]`` of two references.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from eat.config import ConfigError
from eat.paths import VERIFY_CONFIG


class _Missing:
    """A file or key that does not exist (JSON ``null`` is ``None``, a value)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

Loader = Callable[[str], Any]   # file path in the repo → parsed JSON, or MISSING when the file does not exist


# --- references -----------------------------------------------------------------------------------------------

def split_path(path: Any) -> list[Any]:
    """``"a.b.c"`` → ``["a", "b", "c"]``; a list is taken as it is (its items may contain dots)."""
    if isinstance(path, str):
        return path.split(".")
    if isinstance(path, list) and path:
        return path
    raise ConfigError(f"a path is a dotted string or a non-empty list, not {path!r}")


def lookup(data: Any, path: Any) -> Any:
    """The value at ``path`` in parsed JSON, or MISSING."""
    node = data
    for segment in split_path(path):
        if node is MISSING:
            return MISSING
        if isinstance(segment, Mapping):            # {key: value}: the list item whose key has that value
            if not isinstance(node, list):
                return MISSING
            node = next((item for item in node if isinstance(item, Mapping)
                         and all(str(item.get(k)) == str(v) for k, v in segment.items())), MISSING)
        elif isinstance(node, list):
            try:
                node = node[int(segment)]
            except (ValueError, IndexError):
                return MISSING
        elif isinstance(node, Mapping):
            node = node.get(str(segment), MISSING)
        else:
            return MISSING
    return node


def _number(value: Any) -> Any:
    if value is MISSING or value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING                               # a string or a table where a number was meant
    return float(value)


def resolve(ref: Any, load: Loader, file: str | None = None) -> Any:
    """A reference's number: a float, ``None`` (JSON null, or a ratio over zero) or MISSING."""
    if isinstance(ref, Mapping):
        file = ref.get("file", file)
        if "value" in ref:
            return _number(ref["value"])
        for op in ("ratio", "difference"):
            if op in ref:
                a, b = (resolve(r, load, file) for r in _pair(ref[op], op))
                if a is MISSING or b is MISSING:
                    return MISSING
                if a is None or b is None:
                    return None
                if op == "difference":
                    return a - b
                return a / b if b else None
        if "path" not in ref:
            raise ConfigError(f"a reference needs path, ratio, difference or value: {dict(ref)}")
        ref = ref["path"]
    if file is None:
        raise ConfigError(f"reference {ref!r} has no file")
    data = load(file)
    return MISSING if data is MISSING else _number(lookup(data, ref))


def _pair(value: Any, op: str) -> Sequence[Any]:
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"{op} takes two references, not {value!r}")
    return value


def references(ref: Any, file: str | None = None) -> list[tuple[str, Any]]:
    """Every (file, path) a reference reads, for checks of the verify file."""
    if isinstance(ref, Mapping):
        file = ref.get("file", file)
        for op in ("ratio", "difference"):
            if op in ref:
                return [p for r in _pair(ref[op], op) for p in references(r, file)]
        if "value" in ref:
            return []
        ref = ref.get("path")
    if file is None:
        raise ConfigError(f"reference {ref!r} has no file")
    split_path(ref)
    return [(file, ref)]


# --- the two sides --------------------------------------------------------------------------------------------

def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        try:
            return yaml.safe_load(text)              # DVC reads YAML metrics too
        except yaml.YAMLError as exc:
            raise ConfigError(f"{where}: not JSON or YAML ({exc})") from None


def workspace_loader(root: Path) -> Loader:
    """Files as this run wrote them (the working tree)."""
    cache: dict[str, Any] = {}

    def load(file: str) -> Any:
        if file not in cache:
            path = root / file
            cache[file] = _parse(path.read_text(), str(path)) if path.is_file() else MISSING
        return cache[file]
    return load


def git_loader(root: Path, rev: str = "HEAD") -> Loader:
    """Files as committed at ``rev`` (``git show rev:file``); MISSING where the commit has no such file."""
    cache: dict[str, Any] = {}

    def load(file: str) -> Any:
        if file not in cache:
            shown = subprocess.run(["git", "show", f"{rev}:{file}"], cwd=root, capture_output=True, text=True,
                                   check=False)
            cache[file] = _parse(shown.stdout, f"{rev}:{file}") if shown.returncode == 0 else MISSING
        return cache[file]
    return load


# --- the verify file ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyConfig:
    metrics: tuple[dict[str, Any], ...]
    orderings: tuple[dict[str, Any], ...]
    seeds: dict[str, Any]
    source: str = ""

    def files(self) -> list[str]:
        refs = [r for m in self.metrics for r in references(m)]
        refs += [r for o in self.orderings for side in ("greater", "than") for r in references(o[side], o.get("file"))]
        return sorted({f for f, _ in refs})


def _check_entry(entry: Any, where: str, required: Sequence[str]) -> dict[str, Any]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise ConfigError(f"{where}: each entry is a mapping with a name, not {entry!r}")
    missing = [k for k in required if k not in entry]
    if missing:
        raise ConfigError(f"{where} '{entry['name']}': needs {', '.join(missing)}")
    return dict(entry)


def _check_quantity(entry: Mapping[str, Any], where: str) -> None:
    if not any(k in entry for k in ("path", "ratio", "difference")):
        raise ConfigError(f"{where} '{entry['name']}': needs path, ratio or difference")
    references(entry)


def load_config(path: Path | str) -> VerifyConfig:
    """Read and check a verify file (see the module docstring and configs/verify.yaml)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: verify file not found")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping with metrics, orderings, seeds")
    unknown = set(data) - {"metrics", "orderings", "seeds"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)} (metrics, orderings, seeds)")
    metrics = []
    for raw in data.get("metrics") or []:
        entry = _check_entry(raw, f"{path} metrics", ["file"])
        _check_quantity(entry, f"{path} metrics")
        bands = {k: entry[k] for k in ("abs", "rel") if k in entry}
        if not bands or any(not isinstance(v, int | float) or v < 0 for v in bands.values()):
            raise ConfigError(f"{path} metrics '{entry['name']}': needs a band, abs and/or rel, a number >= 0")
        metrics.append(entry)
    orderings = []
    for raw in data.get("orderings") or []:
        entry = _check_entry(raw, f"{path} orderings", ["greater", "than"])
        for side in ("greater", "than"):
            references(entry[side], entry.get("file"))
        if not isinstance(entry.get("margin", 0), int | float):
            raise ConfigError(f"{path} orderings '{entry['name']}': margin is a number")
        orderings.append(entry)
    seeds = data.get("seeds") or {}
    if not isinstance(seeds, Mapping):
        raise ConfigError(f"{path} seeds: expected a mapping (param, targets, criteria)")
    return VerifyConfig(tuple(metrics), tuple(orderings), dict(seeds), str(path))


# --- comparison -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    kind: str          # "metric" or "ordering"
    name: str
    committed: str
    now: str
    band: str
    verdict: str
    failed: bool


def fmt(value: Any) -> str:
    if value is MISSING:
        return "—"
    if value is None:
        return "null"
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.5g}"
    return str(value)


def band_text(entry: Mapping[str, Any]) -> str:
    parts = []
    if "abs" in entry:
        parts.append(f"±{fmt(float(entry['abs']))}")
    if "rel" in entry:
        parts.append(f"±{fmt(100 * float(entry['rel']))}%")
    return " or ".join(parts)


def within(committed: float, now: float, entry: Mapping[str, Any]) -> bool:
    diff = abs(now - committed)
    tolerance = max(float(entry.get("abs", -1)), float(entry.get("rel", -1)) * abs(committed))
    return diff <= tolerance + 1e-12


def compare_metric(entry: Mapping[str, Any], committed_load: Loader, now_load: Loader) -> Row:
    c, n = resolve(entry, committed_load), resolve(entry, now_load)
    band = band_text(entry)
    if n is MISSING:
        verdict, failed = "MISSING now", True
    elif c is MISSING:
        verdict, failed = "new", False
    elif c is None and n is None:
        verdict, failed = "ok (null in both)", False
    elif c is None or n is None:
        verdict, failed = "CHANGED (null in one)", True
    elif within(c, n, entry):
        verdict, failed = "ok", False
    else:
        verdict, failed = "OUT OF BAND", True
    return Row("metric", entry["name"], fmt(c), fmt(n), band, verdict, failed)


def _holds(g: Any, t: Any, margin: float) -> bool | None:
    if g is MISSING or t is MISSING or g is None or t is None:
        return None
    return g - t > margin


def _relation(g: Any, t: Any, margin: float) -> str:
    holds = _holds(g, t, margin)
    if holds is None:
        return f"{fmt(g)} ? {fmt(t)}"
    sign = ">" if holds else "≤"
    return f"{fmt(g)} {sign} {fmt(t)}" + (f" + {fmt(float(margin))}" if margin else "")


def compare_ordering(entry: Mapping[str, Any], committed_load: Loader, now_load: Loader,
                     strict: bool = False) -> Row:
    file, margin = entry.get("file"), float(entry.get("margin", 0))
    cg, ct = resolve(entry["greater"], committed_load, file), resolve(entry["than"], committed_load, file)
    ng, nt = resolve(entry["greater"], now_load, file), resolve(entry["than"], now_load, file)
    was, now = _holds(cg, ct, margin), _holds(ng, nt, margin)
    if now is None:
        if MISSING in (ng, nt):
            verdict, failed = "MISSING now", True
        elif MISSING in (cg, ct):
            verdict, failed = "new: undetermined (null)", strict
        elif was is None:
            verdict, failed = "undetermined (null in both)", strict
        else:
            verdict, failed = "UNDETERMINED now (null)", True
    elif was is None:
        verdict, failed = ("new: holds", False) if now else ("new: fails", strict)
    elif was == now:
        verdict, failed = ("holds", False) if now else ("fails (as committed)", strict)
    else:
        verdict, failed = ("FLIPPED: now holds", True) if now else ("FLIPPED: no longer holds", True)
    band = "greater > than" + (f" + {fmt(margin)}" if margin else "")
    return Row("ordering", entry["name"], _relation(cg, ct, margin), _relation(ng, nt, margin), band, verdict,
               failed)


def verify(root: Path, config: VerifyConfig, rev: str = "HEAD", strict: bool = False) -> list[Row]:
    """One row per metric, then one per ordering."""
    committed, now = git_loader(root, rev), workspace_loader(root)
    rows = [compare_metric(m, committed, now) for m in config.metrics]
    rows += [compare_ordering(o, committed, now, strict) for o in config.orderings]
    return rows


def unchanged_files(root: Path, files: Sequence[str], rev: str = "HEAD") -> list[str]:
    """Files whose working copy is byte-identical to ``rev``'s: a hint that nothing re-ran them."""
    same = []
    for file in files:
        shown = subprocess.run(["git", "show", f"{rev}:{file}"], cwd=root, capture_output=True, check=False)
        if shown.returncode == 0 and (root / file).is_file() and (root / file).read_bytes() == shown.stdout:
            same.append(file)
    return same


# --- output ---------------------------------------------------------------------------------------------------

HEADER = ("metric", "committed", "now", "band", "verdict")


def _cells(row: Row) -> tuple[str, ...]:
    return (row.name, row.committed, row.now, row.band, row.verdict)


def text_table(rows: Sequence[Row]) -> str:
    """Aligned columns for a terminal: metrics first, then the orderings under their own heading."""
    width = [max([len(h)] + [len(c[i]) for c in map(_cells, rows)]) for i, h in enumerate(HEADER)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, width, strict=True)).rstrip()

    out = [line(HEADER), line(["-" * w for w in width])]
    for kind, title in (("metric", None), ("ordering", "orderings (the paper's conclusions)")):
        part = [r for r in rows if r.kind == kind]
        if part and title:
            out.append(f"-- {title}")
        out.extend(line(_cells(r)) for r in part)
    return "\n".join(out)


def markdown_table(rows: Sequence[Row]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")
    body = "\n".join("| " + " | ".join(esc(c) for c in _cells(r)) + " |" for r in rows)
    return "| " + " | ".join(HEADER) + " |\n|---|---|---|---|---|\n" + body + "\n"


def summary(rows: Sequence[Row]) -> str:
    metrics = [r for r in rows if r.kind == "metric"]
    orderings = [r for r in rows if r.kind == "ordering"]
    bad_m = sum(r.failed for r in metrics)
    flipped = sum(r.verdict.startswith("FLIPPED") for r in orderings)
    new = sum(r.verdict.startswith("new") for r in rows)
    failed = any(r.failed for r in rows)
    return (f"verify: {len(metrics) - bad_m}/{len(metrics)} metrics in band, "
            f"{len(orderings) - sum(r.failed for r in orderings)}/{len(orderings)} orderings as committed "
            f"({flipped} flipped), {new} new → {'FAIL' if failed else 'PASS'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=".", help="the repository root (default: .)")
    parser.add_argument("--config", default=None, help=f"the verify file (default: <repo>/{VERIFY_CONFIG})")
    parser.add_argument("--rev", default="HEAD", help="the committed results to compare with (default: HEAD)")
    parser.add_argument("--strict", action="store_true",
                        help="fail also when an ordering does not hold now, even if it did not hold when committed")
    parser.add_argument("--markdown", default=None, help="also write the table as Markdown to this file")
    args = parser.parse_args(argv)
    root = Path(args.repo).resolve()
    try:
        config = load_config(Path(args.config) if args.config else root / VERIFY_CONFIG)
        rows = verify(root, config, args.rev, args.strict)
    except ConfigError as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 2
    print(f"make verify: this run's metrics (working tree) against {args.rev}'s, tolerances from {config.source}\n")
    print(text_table(rows))
    same = unchanged_files(root, config.files(), args.rev)
    if same and len(same) == len(config.files()):
        print(f"\nnote: every compared file is byte-identical to {args.rev}'s: reproduced to the byte, or not re-run "
              "since the checkout (run `make repro` first)")
    elif same:
        print(f"\nnote: {len(same)} of {len(config.files())} files are identical to {args.rev}'s "
              f"(not re-run, or reproduced to the byte): {', '.join(same)}")
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(markdown_table(rows))
    print("\n" + summary(rows))
    return 1 if any(r.failed for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
