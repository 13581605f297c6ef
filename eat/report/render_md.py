"""``reports/paper.md``: the report as Markdown (GitHub tables; figures as relative links to reports/figures/)."""

from __future__ import annotations

from eat.report.report_model import INTRO, TITLE, Report
from eat.report.table_model import Table, fmt, fmt_delta, fmt_ours


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def table_md(table: Table, caption: str) -> str:
    with_paper = table.paper_columns
    head = [table.row_header]
    for c, paper in zip(table.columns, with_paper, strict=True):
        head += [c.label, "paper", "Δ"] if paper else [c.label]
    lines = [f"### {table.title}", "", f"*{_escape(caption)}*", "",
             "| " + " | ".join(_escape(h) for h in head) + " |",
             "|" + "|".join([":--"] + ["--:"] * (len(head) - 1)) + "|"]
    for row in table.rows:
        cells = [row.label]
        for c, cell, paper in zip(table.columns, row.cells, with_paper, strict=True):
            cells.append(fmt_ours(cell, c.digits))
            if paper:
                cells += [fmt(cell.paper, c.digits), fmt_delta(cell, c.digits)]
        lines.append("| " + " | ".join(_escape(x) for x in cells) + " |")
    if not table.rows:
        lines.append("| (no rows) |" + " |" * (len(head) - 1))
    lines += [""] + [f"- {_escape(n)}" for n in table.notes]
    return "\n".join(lines) + "\n"


def render_markdown(report: Report) -> str:
    out = [f"# {TITLE}", "", INTRO, "", "Built from: " + "; ".join(report.provenance.lines()) + ".", ""]
    if report.flags:
        out += ["## Substitutes in this run", ""] + [f"- {f.text}" for f in report.flags] + [""]
    out += ["## Tables", ""] + [table_md(t, report.caption(t)) for t in report.tables]
    out += ["## Figures", ""]
    for fig in report.figures:
        out += [f"### {fig.title}", ""]
        out += [f"![{fig.title}](figures/{fig.file})", ""] if fig.png else []
        out += [f"*{report.caption(fig)}*", ""] + [f"- {n}" for n in fig.notes] + [""]
    return "\n".join(out)
