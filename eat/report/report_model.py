"""The assembled report handed to the renderers."""

from __future__ import annotations

from dataclasses import dataclass

from eat.report.figures import Figure
from eat.report.provenance import Provenance
from eat.report.substitutes import Flag
from eat.report.table_model import Table

TITLE = "EAT reproduction: the paper's tables and figures from this run"
INTRO = ("Every number below is read from this pipeline's own metric files (reports/); the paper's numbers come "
         "from one data file (eat/report/paper_numbers.yaml). Δ = ours − paper, only where both measure the same "
         "thing; every Acc_emo value carries the number of clips n behind it, and is compared with the paper only "
         "where n ≥ 3 (else '—†'). '—' marks a value that is absent, with the reason under the table.")


@dataclass
class Report:
    tables: list[Table]
    figures: list[Figure]
    flags: list[Flag]
    provenance: Provenance

    def caption(self, item: Table | Figure, full: bool = False) -> str:
        """The caption with every substitute that affects the item (short labels, or ``full`` texts)."""
        subs = "; ".join(f.text if full else f.label for f in item.flags)
        return f"{item.caption} Substitutes: {subs}." if subs else item.caption
