"""``reports/paper.tex``: booktabs tables and figures, ready to ``\\input`` (needs ``booktabs`` and ``graphicx``;
figure paths are relative to reports/)."""

from __future__ import annotations

from eat.report.report_model import Report
from eat.report.table_model import Table, fmt, fmt_delta, fmt_ours

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "—": "---", "–": "--", "±": r"$\pm$",
        "Δ": r"$\Delta$", "²": r"$^2$", "−": "-", "→": r"$\to$", "…": r"\ldots{}", "×": r"$\times$",
        "é": r"\'e", "≈": r"$\approx$", "†": r"$^{\dagger}$", "≥": r"$\geq$"}


def tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(text))


def table_tex(table: Table, caption: str) -> str:
    with_paper = table.paper_columns
    n = 1 + len(table.columns) + 2 * sum(with_paper)
    lines = [r"\begin{table*}[t]", r"\centering", r"\small", rf"\caption{{{tex(caption)}}}",
             rf"\label{{tab:eat-{table.id}}}", r"\resizebox{\linewidth}{!}{%",
             r"\begin{tabular}{l" + "r" * (n - 1) + "}", r"\toprule"]
    if any(with_paper):
        head, rules, sub, col = [tex(table.row_header)], [], [""], 2
        for c, paper in zip(table.columns, with_paper, strict=True):
            if paper:
                head.append(rf"\multicolumn{{3}}{{c}}{{{tex(c.label)}}}")
                rules.append(rf"\cmidrule(lr){{{col}-{col + 2}}}")
                sub.append(r"ours & paper & $\Delta$")
                col += 3
            else:
                head.append(tex(c.label))
                sub.append("")
                col += 1
        lines += [" & ".join(head) + r" \\", " ".join(rules), " & ".join(sub) + r" \\"]
    else:
        lines.append(" & ".join([tex(table.row_header)] + [tex(c.label) for c in table.columns]) + r" \\")
    lines.append(r"\midrule")
    for row in table.rows:
        cells = [tex(row.label)]
        for c, cell, paper in zip(table.columns, row.cells, with_paper, strict=True):
            cells.append(tex(fmt_ours(cell, c.digits)))
            if paper:
                cells += [tex(fmt(cell.paper, c.digits)), tex(fmt_delta(cell, c.digits))]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    if table.notes:
        lines += [r"\par\smallskip\footnotesize", r"\begin{minipage}{\linewidth}\raggedright"]
        lines += [tex(n) + r"\\" for n in table.notes] + [r"\end{minipage}"]
    lines.append(r"\end{table*}")
    return "\n".join(lines) + "\n"


def render_tex(report: Report) -> str:
    out = ["% EAT reproduction: tables and figures generated from this run's metric files (eat/report).",
           "% Needs \\usepackage{booktabs,graphicx}. " + "; ".join(report.provenance.lines()), ""]
    out += [table_tex(t, report.caption(t, full=True)) for t in report.tables]
    for fig in report.figures:
        if not fig.png:
            out.append(f"% {fig.id}: not drawn — {'; '.join(fig.notes)}")
            continue
        out += [r"\begin{figure}[t]", r"\centering", rf"\includegraphics[width=\linewidth]{{figures/{fig.file}}}",
                rf"\caption{{{tex(fig.title)}. {tex(report.caption(fig, full=True))}}}", rf"\label{{fig:eat-{fig.id}}}",
                r"\end{figure}", ""]
    return "\n".join(out) + "\n"
