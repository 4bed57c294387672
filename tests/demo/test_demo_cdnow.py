"""The real CDNOW log through the ingestion path (its own module: the shop module holds a transaction)."""

from __future__ import annotations

import sqlalchemy as sa

from clm.commerce.models import Order
from clm.customers.models import Customer
from clm.demo import cdnow
from clm.demo.load import load_stories


def test_a_slice_of_cdnow_loads_its_customers_and_orders_in_usd_cents(session_factory, db):
    rows = [r for r in cdnow.read_rows() if int(r[0]) <= 40]
    stats = load_stories(session_factory, cdnow.stories(limit=40))
    assert stats.rejected == []
    assert db.scalar(sa.select(sa.func.count()).select_from(Customer)) == 40
    orders = db.execute(sa.select(Order.currency, sa.func.count(), sa.func.sum(Order.total)).group_by(Order.currency)).all()
    cents = sum(round(float(r[3]) * 100) for r in rows)
    assert orders == [("USD", len(rows), cents)]
    first = db.scalar(sa.select(Order).where(Order.external_id == "cdnow-00001-1"))
    assert (first.total, first.placed_at.date().isoformat()) == (1177, "1997-01-01")


def test_a_file_that_is_not_the_cdnow_log_is_refused_with_its_name(tmp_path):
    import pytest

    bad = tmp_path / "orders.txt"
    bad.write_text("id,date\n1,2\n")
    with pytest.raises(cdnow.CdnowFileError, match="orders.txt"):
        list(cdnow.stories(bad))
