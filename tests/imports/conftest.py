"""Builders for import tests: files written from rows, an import run inside the test's transaction."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from clm.config import Settings
from clm.imports.mapping import build_mapping
from clm.imports.run import Outcome, import_file


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(rows, name=..., bom=False, delimiter=","): the first row is the header."""

    def write(rows: list[list], name: str = "data.csv", bom: bool = False, delimiter: str = ",") -> Path:
        path = tmp_path / name
        with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
            csv.writer(f, delimiter=delimiter).writerows(rows)
        return path

    return write


@pytest.fixture
def write_jsonl(tmp_path):
    def write(records: list, name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        path.write_bytes(b"".join(
            (r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records
        ))
        return path

    return write


@pytest.fixture
def run_import(session_factory):
    """run_import(kind, path, map=[...], mapping_file=..., traits=..., chunk_size=...) -> Outcome."""
    settings = Settings(_env_file=None, database_url="sqlite://")

    def run(kind: str, path: Path, *, map: list[str] | None = None, mapping_file: Path | None = None,
            traits: str | None = None, chunk_size: int = 1000) -> Outcome:
        mapping = build_mapping(kind, map, mapping_file, traits)
        return import_file(kind, path, session_factory, mapping=mapping, settings=settings, chunk_size=chunk_size)

    return run


@pytest.fixture
def count(db):
    """count(Model, *where): rows in the table, as the test's transaction sees them."""

    def rows(model, *where) -> int:
        return db.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

    return rows


@pytest.fixture
def snapshot(count):
    """Row counts of every table an import writes: compare before and after a second import."""
    from clm.commerce.models import Order, OrderItem, Product
    from clm.customers.models import Customer, Identity
    from clm.outbox.models import OutboxEvent
    from clm.tracking.models import Event, EventDaily

    def take() -> dict[str, int]:
        return {m.__tablename__: count(m) for m in (Customer, Identity, Order, OrderItem, Product, Event,
                                                    EventDaily, OutboxEvent)}

    return take


def report_rows(outcome: Outcome) -> list[dict[str, str]]:
    """The error report as dicts (line, column, reason, then the original columns)."""
    with open(outcome.report_path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def report():
    return report_rows
