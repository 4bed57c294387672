"""Importing one file end to end: open it, bind the mapping to its columns, run, write the report.

The CLI and the tests both come through here; the caller gives the session factory, so tests run an
import inside their rolled-back transaction while the CLI opens its own engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from clm.config import Settings, get_settings
from clm.imports.customers import CustomerImporter
from clm.imports.events import EventImporter
from clm.imports.mapping import KINDS, Mapping
from clm.imports.orders import OrderImporter
from clm.imports.readers import CsvSource, open_source
from clm.imports.report import ErrorReport, default_report_path
from clm.imports.service import DEFAULT_CHUNK, Importer, Summary, run_import
from clm.imports.values import zone


@dataclass
class Outcome:
    summary: Summary
    report_path: Path
    rejected: int

    @property
    def report_written(self) -> bool:
        return self.rejected > 0


def make_importer(kind: str, mapping: Mapping, settings: Settings, *, currency: str | None = None) -> Importer:
    if kind == "customers":
        return CustomerImporter(mapping, region=settings.default_region)
    if kind == "orders":
        return OrderImporter(mapping, region=settings.default_region, currency=currency or settings.default_currency,
                             timezone=zone(settings.timezone))
    if kind == "events":
        return EventImporter(mapping, region=settings.default_region, currency=currency or settings.default_currency,
                             timezone=zone(settings.timezone))
    if kind == "leads":
        from clm.imports.leads import LeadImporter

        return LeadImporter(mapping, region=settings.default_region, timezone=zone(settings.timezone))
    raise ValueError(f"unknown import kind {kind!r}; use one of {', '.join(KINDS)}")


def import_file(kind: str, path: str | Path, session_factory: sessionmaker[Session], *,
                mapping: Mapping | None = None, settings: Settings | None = None, errors: str | Path | None = None,
                chunk_size: int = DEFAULT_CHUNK, currency: str | None = None,
                on_start: Callable[[int], Callable[[int], None]] | None = None) -> Outcome:
    """Import `path` as `kind`. Raises ImportFileError when the file or the mapping cannot be used.

    `on_start(total_bytes)` may return a callback that is given the bytes read after each chunk.
    """
    path = Path(path)
    settings = settings or get_settings()
    mapping = mapping or Mapping(kind)
    with open_source(path) as source:
        bound = mapping.bind(source.columns, strict=path.suffix.lower() == ".csv")
        importer = make_importer(kind, bound, settings, currency=currency)
        report_path = Path(errors) if errors else default_report_path(path)
        # JSON Lines records differ in their keys: the report quotes each record whole.
        report = ErrorReport(report_path, source.columns if isinstance(source, CsvSource) else [])
        progress = on_start(source.total_bytes) if on_start else None
        try:
            summary = run_import(importer, source, session_factory, report=report, chunk_size=chunk_size,
                                 progress=progress)
        finally:
            report.close()
    return Outcome(summary, report_path, report.count)
