"""The paper's reference numbers, read from ``paper_numbers.yaml`` (one entry per number: table, row, column,
value). Nothing else in the report is typed by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

PAPER_NUMBERS = Path(__file__).with_name("paper_numbers.yaml")


@dataclass(frozen=True)
class PaperNumbers:
    """``values[(table, row, column)]`` in the paper's units; ``not_recorded[table]``: what the YAML file omits
    (the paper's tables: docs/paper_notes.md §10)."""

    values: dict[tuple[str, str, str], float]
    not_recorded: dict[str, list[str]] = field(default_factory=dict)

    def get(self, table: str, row: str, column: str) -> float | None:
        """The paper's number, or None where it is not recorded here."""
        return self.values.get((table, row, column))

    def has_table(self, table: str) -> bool:
        return any(t == table for t, _, _ in self.values)

    def rows(self, table: str) -> list[str]:
        """The row names the file gives for ``table``, in the file's order."""
        return list(dict.fromkeys(r for t, r, _ in self.values if t == table))

    @classmethod
    def load(cls, path: Path | str = PAPER_NUMBERS) -> PaperNumbers:
        data = yaml.safe_load(Path(path).read_text())
        values: dict[tuple[str, str, str], float] = {}
        for i, entry in enumerate(data.get("numbers", [])):
            missing = {"table", "row", "column", "value"} - set(entry)
            if missing:
                raise ValueError(f"{path}: entry {i} lacks {', '.join(sorted(missing))}")
            key = (str(entry["table"]), str(entry["row"]), str(entry["column"]))
            if key in values:
                raise ValueError(f"{path}: {key} given twice")
            values[key] = float(entry["value"])
        return cls(values, {k: [str(x) for x in v] for k, v in (data.get("not_recorded") or {}).items()})
