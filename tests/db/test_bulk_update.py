"""`update_rows_at_once` (one statement on PostgreSQL, executemany on SQLite) writes exactly what
`update_rows` writes, JSON, times, floats, text and nulls included, only to the rows named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from clm.db.bulk import update_rows, update_rows_at_once
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Lead

COLUMNS = ("score", "score_kind", "score_detail", "scored_at", "classification")


def _leads(db, n: int) -> list[int]:
    ids = [capture_lead(db, LeadIn(phone=f"09170000{i:02d}", name=f"Khách {i}"), score=False).lead.id for i in range(n)]
    db.commit()
    return ids


def _read(db, ids):
    db.expire_all()
    return [tuple(getattr(db.get(Lead, i), c) for c in COLUMNS) for i in ids]


def test_one_statement_writes_what_a_statement_per_row_writes(db):
    ids = _leads(db, 6)
    at = datetime(2031, 3, 2, 3, 4, 5, 678901, tzinfo=UTC)
    rows = [(0.1 * k + 1e-9, "learned", {"reasons": [{"vi": "“Giỏ hàng” ×3", "n": k}], "note": None}, at,
             None if k % 2 else "target") for k in range(3)]
    update_rows(db, Lead.__table__, COLUMNS, [(*row, i) for row, i in zip(rows, ids[:3], strict=True)])
    update_rows_at_once(db, Lead.__table__, COLUMNS, [(*row, i) for row, i in zip(rows, ids[3:], strict=True)])
    db.commit()
    assert _read(db, ids[:3]) == _read(db, ids[3:])
    assert _read(db, ids[3:])[1] == (0.1 + 1e-9, "learned", {"reasons": [{"vi": "“Giỏ hàng” ×3", "n": 1}], "note": None},
                                     at, None)


def test_only_the_named_rows_change_and_a_bad_row_is_refused(db):
    ids = _leads(db, 3)
    update_rows_at_once(db, Lead.__table__, ("score",), [(0.5, ids[1])])
    db.commit()
    db.expire_all()
    assert [db.get(Lead, i).score for i in ids] == [None, 0.5, None]
    update_rows_at_once(db, Lead.__table__, ("score",), [])  # nothing to do
    with pytest.raises(ValueError, match="values"):  # a row without its key
        update_rows_at_once(db, Lead.__table__, ("score",), [(0.5,)])
    assert db.scalar(sa.select(sa.func.count()).select_from(Lead).where(Lead.score.is_not(None))) == 1
