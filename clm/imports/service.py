"""Running an import: read the file in chunks, validate each row, write each chunk in one transaction.

A row lands whole or goes to the error report. A chunk whose write fails in the database is written
again one unit at a time (a unit is a row, or the rows of one order), so only the bad unit is lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from clm.db.engine import for_writing
from clm.imports.readers import Row, RowSource
from clm.imports.report import ErrorReport, Rejection
from clm.lib.errors import FieldError

DEFAULT_CHUNK = 2000


@dataclass(slots=True)
class Unit:
    """What lands whole or not at all: one row, or all the rows of one order."""

    rows: list[Row]
    data: Any


@dataclass
class Written:
    imported: int = 0  # rows
    unchanged: int = 0  # rows already there (duplicates)
    rejected: list[Rejection] = field(default_factory=list)


class Importer(Protocol):
    kind: str

    def group_of(self, row: Row) -> Any:
        """Rows with the same non-None group that follow each other stay in one chunk (one order's items)."""

    def prepare(self, rows: list[Row]) -> tuple[list[Unit], list[Rejection]]:
        """Validate rows without touching the database: units to write, rows rejected."""

    def write(self, session: Session, units: list[Unit]) -> Written:
        """Write `units` in the caller's transaction."""


@dataclass
class Summary:
    read: int = 0
    imported: int = 0
    unchanged: int = 0
    rejected: int = 0
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    @property
    def failed(self) -> bool:
        """Every row was rejected: the exit code says so."""
        return self.read > 0 and self.rejected == self.read


def rejection(row: Row, column: str | None, reason: str) -> Rejection:
    return Rejection(row.line, column, reason, row.values)


def one_unit_per_row(rows: list[Row], parse: Callable[[Row], Any],
                     column_of: Callable[[str | None], str | None]) -> tuple[list[Unit], list[Rejection]]:
    """For importers where each row stands alone: parse every row into a unit, or reject it naming the
    file's column (`column_of` maps our field to it) and the problem."""
    units, rejected = [], []
    for row in rows:
        if row.error:
            rejected.append(rejection(row, None, row.error))
            continue
        try:
            units.append(Unit([row], parse(row)))
        except FieldError as exc:
            rejected.append(rejection(row, column_of(exc.field), exc.message))
    return units, rejected


def chunks(rows: Iterator[Row], size: int, group_of: Callable[[Row], Any]) -> Iterator[list[Row]]:
    """Lists of about `size` rows; a chunk never ends inside a run of rows of the same group."""
    chunk: list[Row] = []
    for row in rows:
        if len(chunk) >= size:
            last = group_of(chunk[-1])
            if last is None or group_of(row) != last:
                yield chunk
                chunk = []
        chunk.append(row)
    if chunk:
        yield chunk


def run_import(importer: Importer, source: RowSource, session_factory: sessionmaker[Session], *,
               report: ErrorReport | None = None, chunk_size: int = DEFAULT_CHUNK,
               progress: Callable[[int], None] | None = None) -> Summary:
    """Import every row of `source`; each chunk commits on its own. Returns the counts."""
    summary = Summary()
    started = time.perf_counter()
    for chunk in chunks(iter(source), chunk_size, importer.group_of):
        summary.read += len(chunk)
        units, rejected = importer.prepare(chunk)
        written = _write(importer, session_factory, units) if units else Written()
        summary.imported += written.imported
        summary.unchanged += written.unchanged
        rejected = sorted(rejected + written.rejected, key=lambda r: r.line)
        summary.rejected += len(rejected)
        if report is not None:
            report.extend(rejected)
        if progress is not None:
            progress(source.bytes_read)
    summary.seconds = time.perf_counter() - started
    return summary


def _write_once(importer: Importer, session_factory: sessionmaker[Session], units: list[Unit]) -> Written:
    with session_factory() as session, session.begin():
        for_writing(session)
        return importer.write(session, units)


def _write(importer: Importer, session_factory: sessionmaker[Session], units: list[Unit]) -> Written:
    try:
        return _write_once(importer, session_factory, units)
    except (SQLAlchemyError, ValueError, LookupError) as exc:
        if len(units) == 1:
            reason = f"could not be saved: {_short(exc)}"
            return Written(rejected=[rejection(row, None, reason) for row in units[0].rows])
    # Row by row (unit by unit) so that one bad unit does not take the chunk's others with it.
    out = Written()
    for unit in units:
        one = _write(importer, session_factory, [unit])
        out.imported += one.imported
        out.unchanged += one.unchanged
        out.rejected += one.rejected
    return out


def _short(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0][:300] if str(orig).strip() else type(orig).__name__
