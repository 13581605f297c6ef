"""The report's table model, shared by the builders (:mod:`tables`) and the renderers: a cell holds our number,
the paper's (or None: not recorded here) and whether the two measure the same thing."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from eat.report.substitutes import Flag

MISSING = "—"


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

    @property
    def diff(self) -> float | None:
        """ours − paper, where both exist and measure the same thing."""
        if self.ours is None or self.paper is None or not self.comparable:
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

    def cell(self, row: str, column: str) -> Cell:
        """The cell of row key ``row`` and column key ``column`` (tests, headline numbers)."""
        r = next(r for r in self.rows if r.key == row)
        return r.cells[[c.key for c in self.columns].index(column)]

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "caption": self.caption, "notes": self.notes,
                "substitutes": [f.text for f in self.flags],
                "columns": [c.label for c in self.columns],
                "rows": [{"key": r.key, "label": r.label, "note": r.note,
                          "cells": {c.key: {"ours": x.ours, "paper": x.paper, "diff": x.diff, "ci95": x.ci}
                                    for c, x in zip(self.columns, r.cells, strict=True)}} for r in self.rows]}


def fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{value:.{digits}f}"


def fmt_diff(value: float | None, digits: int) -> str:
    return MISSING if value is None else f"{value:+.{digits}f}"


def fmt_ours(cell: Cell, digits: int) -> str:
    text = fmt(cell.ours, digits)
    return text if cell.ci is None or cell.ours is None else f"{text} ± {cell.ci:.{digits}f}"
