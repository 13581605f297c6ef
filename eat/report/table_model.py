"""The report's table model, shared by the builders (:mod:`tables`) and the renderers: a cell holds our number,
the paper's (or None: not recorded here) and whether the two measure the same thing; an Acc_emo cell also holds
the number of clips n behind our value, and gets no difference to the paper where n < 3."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from eat.report.substitutes import Flag

MISSING = "—"
MIN_CLIPS = 3                  # an Acc_emo value from fewer clips is shown, never compared with the paper
NO_COMPARISON_MARK = "†"
NO_COMPARISON = (f"{NO_COMPARISON_MARK} n < {MIN_CLIPS}: no comparison (our Acc_emo rests on fewer than "
                 f"{MIN_CLIPS} clips, or on an unknown number, n=?; the paper's value is shown, Δ is left empty).")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    digits: int = 2
    comparable: bool = True     # False: a substitute measure, the paper's number is shown but no difference
    better: int = 0             # +1 higher is better, -1 lower is better, 0 neither (colours the difference)


@dataclass(frozen=True)
class Cell:
    ours: float | None
    paper: float | None = None
    ci: float | None = None     # half-width of a 95 % interval (Table 2)
    comparable: bool = True
    counted: bool = False       # an Acc_emo cell: shows n beside ours, compared with the paper only where n ≥ 3
    n: int | None = None        # clips (Table 2: judgements) behind ours; None where unknown

    @property
    def too_few(self) -> bool:
        """Ours and the paper's both exist and measure the same thing, but ours rests on fewer than
        ``MIN_CLIPS`` clips (or on an unknown number): no comparison."""
        return (self.counted and self.ours is not None and self.paper is not None and self.comparable
                and (self.n is None or self.n < MIN_CLIPS))

    @property
    def diff(self) -> float | None:
        """ours − paper, where both exist, measure the same thing and (Acc_emo) ours rests on n ≥ 3 clips."""
        if self.ours is None or self.paper is None or not self.comparable or self.too_few:
            return None
        return self.ours - self.paper


@dataclass
class Row:
    key: str
    label: str
    cells: list[Cell]
    note: str | None = None     # e.g. why the row's metrics are missing


@dataclass
class Table:
    id: str
    title: str
    columns: list[Column]
    rows: list[Row]
    caption: str
    notes: list[str] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    row_header: str = "method"

    @property
    def has_paper(self) -> bool:
        return any(self.paper_columns)

    @property
    def paper_columns(self) -> list[bool]:
        """Per column: whether any row has a paper number there (rendered as ours | paper | Δ, else ours)."""
        return [any(r.cells[i].paper is not None for r in self.rows) for i in range(len(self.columns))]

    @property
    def too_few(self) -> bool:
        """Whether any cell withholds its difference for n < 3 (the table then carries :data:`NO_COMPARISON`)."""
        return any(c.too_few for r in self.rows for c in r.cells)

    def cell(self, row: str, column: str) -> Cell:
        """The cell of row key ``row`` and column key ``column`` (tests, headline numbers)."""
        r = next(r for r in self.rows if r.key == row)
        return r.cells[[c.key for c in self.columns].index(column)]

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "caption": self.caption, "notes": self.notes,
                "substitutes": [f.text for f in self.flags],
                "columns": [c.label for c in self.columns],
                "rows": [{"key": r.key, "label": r.label, "note": r.note,
                          "cells": {c.key: {"ours": x.ours, "paper": x.paper, "diff": x.diff, "ci95": x.ci,
                                            **({"n": x.n, "too_few": x.too_few} if x.counted else {})}
                                    for c, x in zip(self.columns, r.cells, strict=True)}} for r in self.rows]}


def fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{value:.{digits}f}"


def fmt_diff(value: float | None, digits: int) -> str:
    return MISSING if value is None else f"{value:+.{digits}f}"


def fmt_delta(cell: Cell, digits: int) -> str:
    """The Δ column of ``cell``: ours − paper, or '—' (marked † where withheld for n < 3)."""
    return MISSING + NO_COMPARISON_MARK if cell.too_few else fmt_diff(cell.diff, digits)


def fmt_ours(cell: Cell, digits: int) -> str:
    """Ours, with ``± ci`` where an interval is known and ``(n=…)`` on an Acc_emo cell ('?' where unknown)."""
    text = fmt(cell.ours, digits)
    if cell.ours is None:
        return text
    if cell.ci is not None:
        text = f"{text} ± {cell.ci:.{digits}f}"
    if cell.counted:
        text = f"{text} (n={'?' if cell.n is None else cell.n})"
    return text
