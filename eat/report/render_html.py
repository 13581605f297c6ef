"""``reports/index.html``: the report as one self-contained page (inline CSS, PNGs as base64 data URIs; no
script, no CDN, no external file)."""

from __future__ import annotations

import base64
from html import escape

from eat.report.report_model import INTRO, TITLE, Report
from eat.report.table_model import Table, fmt, fmt_delta, fmt_ours

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1400px;
color:#1d232a;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}
h2{font-size:18px;border-bottom:1px solid #d8dee4;padding-bottom:4px;margin-top:32px}
h3{font-size:15px;margin:24px 0 4px}
.prov{font-size:12px;color:#57606a} .intro{color:#333}
.subs{background:#fff8e1;border:1px solid #f0c36d;border-radius:6px;padding:8px 14px;font-size:13px}
.wrap{overflow-x:auto} table{border-collapse:collapse;font-size:12.5px;margin:6px 0}
th,td{padding:3px 6px;text-align:right;white-space:nowrap} th:first-child,td:first-child{text-align:left}
thead tr:first-child th{border-top:2px solid #333} thead tr:last-child th{border-bottom:1px solid #333}
tbody tr:last-child td{border-bottom:2px solid #333} th.grp{text-align:center;border-bottom:1px solid #999}
td.paper{color:#57606a} td.pos{color:#116329} td.neg{color:#a40e26} td.miss{color:#999}
p.cap{font-size:13px;color:#333;margin:2px 0 4px}
ul.notes{font-size:12px;color:#57606a;margin:2px 0 0 0} figure{margin:10px 0}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px;color:#333}
"""


def _cls(value: str, kind: str, better: int = 0) -> str:
    """CSS class of a cell: greyed paper numbers and absent values; a difference green where ours is better."""
    if value.startswith("—"):       # absent, or withheld for n < 3 ("—†")
        return ' class="miss"'
    if kind == "diff" and better:
        sign = -1 if value.startswith("-") else (1 if value.strip("+0.") else 0)
        return "" if sign == 0 else (' class="pos"' if sign == better else ' class="neg"')
    return ' class="paper"' if kind == "paper" else ""


def table_html(table: Table, caption: str) -> str:
    with_paper = table.paper_columns
    out = [f'<h3 id="{table.id}">{escape(table.title)}</h3>', f'<p class="cap">{escape(caption)}</p>',
           '<div class="wrap"><table>', "<thead>"]
    if any(with_paper):
        out.append(f'<tr><th rowspan="2">{escape(table.row_header)}</th>' + "".join(
            f'<th class="grp" colspan="3">{escape(c.label)}</th>' if p else f'<th rowspan="2">{escape(c.label)}</th>'
            for c, p in zip(table.columns, with_paper, strict=True)) + "</tr>")
        out.append("<tr>" + "<th>ours</th><th>paper</th><th>Δ</th>" * sum(with_paper) + "</tr>")
    else:
        out.append(f"<tr><th>{escape(table.row_header)}</th>"
                   + "".join(f"<th>{escape(c.label)}</th>" for c in table.columns) + "</tr>")
    out.append("</thead><tbody>")
    for row in table.rows:
        cells = [f"<td>{escape(row.label)}</td>"]
        for c, cell, paper in zip(table.columns, row.cells, with_paper, strict=True):
            values = [(fmt_ours(cell, c.digits), "ours")]
            if paper:
                values += [(fmt(cell.paper, c.digits), "paper"), (fmt_delta(cell, c.digits), "diff")]
            cells += [f"<td{_cls(v, k, c.better)}>{escape(v)}</td>" for v, k in values]
        out.append("<tr>" + "".join(cells) + "</tr>")
    if not table.rows:
        out.append(f'<tr><td colspan="{1 + len(table.columns) + 2 * sum(with_paper)}">(no rows)</td></tr>')
    out.append("</tbody></table></div>")
    if table.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in table.notes) + "</ul>")
    return "\n".join(out)


def render_html(report: Report) -> str:
    toc = " · ".join(f'<a href="#{t.id}">{escape(t.id)}</a>' for t in report.tables)
    toc += " · " + " · ".join(f'<a href="#{f.id}">{escape(f.id)}</a>' for f in report.figures)
    body = [f"<h1>{escape(TITLE)}</h1>",
            '<div class="prov">' + "<br>".join(escape(x) for x in report.provenance.lines()) + "</div>",
            f'<p class="intro">{escape(INTRO)}</p>', f"<p>{toc}</p>"]
    if report.flags:
        body.append('<div class="subs"><b>Substitutes in this run</b><ul>' +
                    "".join(f"<li>{escape(f.text)}</li>" for f in report.flags) + "</ul></div>")
    body.append("<h2>Tables</h2>")
    body += [table_html(t, report.caption(t)) for t in report.tables]
    body.append("<h2>Figures</h2>")
    for fig in report.figures:
        body.append(f'<figure id="{fig.id}"><h3>{escape(fig.title)}</h3>')
        if fig.png:
            data = base64.b64encode(fig.png).decode("ascii")
            body.append(f'<img alt="{escape(fig.title)}" src="data:image/png;base64,{data}">')
        body.append(f"<figcaption>{escape(report.caption(fig))}</figcaption>")
        if fig.notes:
            body.append('<ul class="notes">' + "".join(f"<li>{escape(n)}</li>" for n in fig.notes) + "</ul>")
        body.append("</figure>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{escape(TITLE)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
