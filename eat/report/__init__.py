"""The paper report (issue 8): Tables 1–8 and Figures 5, 6, 12 built from the pipeline's own metric files,
each number beside the paper's (``paper_numbers.yaml``, the only hand-typed numbers) and the difference.

Flow, one module per step: :mod:`inputs` reads ``reports/**`` → :mod:`substitutes` lists what stands in for
the paper's data or weights → :mod:`tables` / :mod:`figures` build the tables and plots → :mod:`render_md`,
:mod:`render_tex`, :mod:`render_html` write ``reports/paper.md``, ``paper.tex``, ``index.html``;
:mod:`provenance` stamps each with the commit, params hash and data version. :func:`build.build_report`
runs it all (the ``report`` DVC stage).
"""
