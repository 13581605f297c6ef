"""The ``report`` stage: read the run's metric files, build every table and figure, write
``paper.md``, ``paper.tex``, ``index.html``, ``paper.json`` (the numbers) and ``figures/*.png``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from eat.io.atomic import atomic_path, write_text_atomic
from eat.paths import BASELINES, PAPER_PROFILE, REPORTS
from eat.report import figures, provenance, substitutes, tables
from eat.report.inputs import load_results
from eat.report.paper_numbers import PAPER_NUMBERS, PaperNumbers
from eat.report.render_html import render_html
from eat.report.render_md import render_markdown
from eat.report.render_tex import render_tex
from eat.report.report_model import Report

COMPUTE = "compute"


def build_report(reports_dir: Path | str = REPORTS, out_dir: Path | str | None = None, *,
                 params_path: Path | str = "params.yaml", paper_profile: Path | str | None = PAPER_PROFILE,
                 baselines_dir: Path | str | None = BASELINES, repo: Path | str = ".",
                 dvc_lock: Path | str = "dvc.lock", paper_numbers: Path | str = PAPER_NUMBERS,
                 shares: dict[str, float] | None = None) -> Report:
    """Build the report from ``reports_dir`` into ``out_dir`` (default the same folder).

    ``paper_profile``: the overlay at which Fig. 6 is computed (None: skip); ``shares`` short-cuts that
    computation with known percentages (tests)."""
    results = load_results(reports_dir, params_path, baselines_dir)
    paper = PaperNumbers.load(paper_numbers)
    flags = substitutes.detect(results)
    note = None
    if shares is None and paper_profile is not None:
        try:
            # local: shares pulls torch and the networks (a second of start-up the other tables do not need), and
            # a broken model file then fails here, inside the try, not at import
            from eat.report.shares import paper_profile_shares

            shares = paper_profile_shares(params_path, paper_profile)
        except Exception as err:   # a broken model file must not hide every table
            note = f"paper-profile shares not computed: {type(err).__name__}: {err}"
    elif shares is None:
        note = "paper-profile shares not computed (no profile given)"
    all_tables = tables.build_tables(results, paper, flags, shares, note)
    report = Report(all_tables, figures.build_figures(results, flags, all_tables[-1]), flags,
                    provenance.collect(repo, params_path, dvc_lock))
    write_report(report, Path(out_dir or reports_dir))
    return report


def write_report(report: Report, out: Path) -> None:
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for fig in report.figures:
        target = out / "figures" / fig.file
        if fig.png:
            with atomic_path(target) as tmp:
                Path(tmp).write_bytes(fig.png)
        elif target.exists():
            target.unlink()        # no stale figure from an earlier run
    write_text_atomic(out / "paper.md", render_markdown(report))
    write_text_atomic(out / "paper.tex", render_tex(report))
    write_text_atomic(out / "index.html", render_html(report))
    numbers = {"provenance": dataclasses.asdict(report.provenance), "substitutes": [f.text for f in report.flags],
               "tables": [t.to_dict() for t in report.tables],
               "figures": [{"id": f.id, "file": f.file if f.png else None, "notes": f.notes} for f in report.figures]}
    write_text_atomic(out / "paper.json", json.dumps(numbers, indent=2) + "\n")
