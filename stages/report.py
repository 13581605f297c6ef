"""DVC stage ``report``: the paper's Tables 1–8 and Figures 5, 6, 12 from this run's metric files, beside the
paper's numbers → reports/paper.md, paper.tex, index.html, paper.json, figures/ (eat/report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from eat import paths
from eat.report.build import build_report
from stages.cli import run_stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=Path, default=paths.REPORTS,
                        help="folder the pipeline's metric files are read from")
    parser.add_argument("--out", default=None, help="where the report is written (default: --reports)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--paper-profile", type=Path, default=paths.PAPER_PROFILE,
                        help="overlay at which Fig. 6's parameter shares are computed")
    parser.add_argument("--baselines", type=Path, default=paths.BASELINES,
                        help="folder of baseline methods (<method>/<uid>.mp4); their rows read "
                             "reports/evaluate/baseline_<method>/metrics.json")
    args = parser.parse_args()

    def body() -> None:
        report = build_report(args.reports, args.out, params_path=args.params, paper_profile=args.paper_profile,
                              baselines_dir=args.baselines)
        missing = sum(r.note is not None for t in report.tables for r in t.rows)
        print(f"report: {len(report.tables)} tables ({missing} rows without metrics), "
              f"{sum(f.png is not None for f in report.figures)}/{len(report.figures)} figures, "
              f"{len(report.flags)} substitutes -> {args.out or args.reports}/index.html")

    return run_stage(body)


if __name__ == "__main__":
    raise SystemExit(main())
