"""The error report: one CSV line per rejected row with its line number, the column and the reason.

The original values follow, so the report can be fixed in a spreadsheet and imported again.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

HEAD = ["line", "column", "reason"]


@dataclass(slots=True)
class Rejection:
    line: int
    column: str | None
    reason: str
    values: dict[str, Any]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


class ErrorReport:
    """Writes rejections to `path` as they come; the file exists only when there was at least one.

    A report left by an earlier run at the same path is replaced, so it never describes an old import.
    """

    def __init__(self, path: Path, columns: list[str]):
        self.path = Path(path)
        self.columns = [c for c in columns if c not in HEAD] or ["record"]
        self.count = 0
        self._file = None
        self._writer: Any = None
        self.path.unlink(missing_ok=True)

    def add(self, rejection: Rejection) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # utf-8-sig: Excel opens the report with its Vietnamese text intact.
            self._file = open(self.path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._file)
            self._writer.writerow(HEAD + self.columns)
        values = rejection.values
        if self.columns == ["record"]:  # JSON Lines: the record as it was
            original = [values["_raw"] if "_raw" in values else orjson.dumps(values, default=str).decode()]
        else:
            original = [_cell(values.get(c)) for c in self.columns]
        self._writer.writerow([rejection.line, rejection.column or "", rejection.reason, *original])
        self.count += 1

    def extend(self, rejections: list[Rejection]) -> None:
        for rejection in rejections:
            self.add(rejection)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def default_report_path(source: Path) -> Path:
    """`customers.csv` -> `customers.errors.csv`, beside the input."""
    return source.with_name(f"{source.stem}.errors.csv")
