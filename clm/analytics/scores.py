"""Reading orders in bulk for the models, writing `customer_scores` in chunks, and reading scores back.

Orders are read as three NumPy columns (customer, local day, net amount) with one streamed select,
never row by row through the ORM; scores are written with chunked INSERT ... ON CONFLICT DO UPDATE
through the driver's executemany (clm.db.bulk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.analytics.models import AnalyticsRun, CustomerScore
from clm.commerce.models import Order
from clm.customers.models import Customer
from clm.db.bulk import insert_rows

_orders = Order.__table__
_scores = CustomerScore.__table__
_customers = Customer.__table__
READ_CHUNK = 250_000
WRITE_CHUNK = 20_000
# 1970-01-01 as a Julian day number: SQLite's julianday(t) - this = days since the Unix epoch.
_JULIAN_EPOCH = 2440587.5

SCORE_COLUMNS = ("customer_id", "status", "reason", "recency_days", "tenure_days", "frequency", "monetary", "r_score",
                 "f_score", "m_score", "rfm_segment", "p_alive", "expected_purchases_90d", "predicted_clv_12m",
                 "churn_risk", "currency", "model", "run_id", "computed_at")
_UPSERT = "ON CONFLICT (customer_id) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in SCORE_COLUMNS if c != "customer_id")


@dataclass(frozen=True)
class Orders:
    """The shop's orders in one currency: one entry per order, net of refunds (fully refunded ones left out)."""

    customer: np.ndarray  # int64 customer id
    day: np.ndarray  # int64 day number (days since 1970-01-01) in the business time zone
    amount: np.ndarray  # float64 total - refunded, minor units

    @property
    def size(self) -> int:
        return int(self.customer.size)

    def transactions(self) -> dict[str, np.ndarray]:
        """The mapping the CLV library reads (`customer`, `date`, `amount` columns)."""
        return {"customer": self.customer, "date": self.day.astype("datetime64[D]"), "amount": self.amount}


def utc_offset_days(timezone: str, at: datetime) -> float:
    """The business time zone's offset from UTC at `at`, in days (Asia/Ho_Chi_Minh: 7/24)."""
    offset = ZoneInfo(timezone).utcoffset(at.replace(tzinfo=None))
    return (offset.total_seconds() if offset else 0.0) / 86400.0


def load_orders(session: Session, currency: str, offset_days: float = 0.0, chunk: int = READ_CHUNK) -> Orders:
    """Every kept order in `currency` as NumPy arrays, read in chunks of `chunk` rows.

    Days are counted in the business time zone by a fixed offset (the offset at refresh time: a
    daylight-saving zone puts orders within an hour of midnight on the neighbouring day for part of
    the year, which moves nothing the models see by more than a day).
    """
    if session.get_bind().dialect.name == "sqlite":
        epoch_days = sa.func.julianday(_orders.c.placed_at) - _JULIAN_EPOCH
    else:
        epoch_days = sa.extract("epoch", _orders.c.placed_at) / 86400.0
    query = (sa.select(_orders.c.customer_id, epoch_days, _orders.c.total - _orders.c.refunded)
             .where(_orders.c.currency == currency, _orders.c.status != "refunded"))
    parts = []
    result = session.execute(query.execution_options(yield_per=chunk))
    for rows in result.partitions(chunk):
        # fromiter over the flattened rows: np.array on a list of Row objects is ~20x slower
        parts.append(np.fromiter(chain.from_iterable(rows), dtype=np.float64, count=3 * len(rows)).reshape(-1, 3))
    data = np.concatenate(parts) if parts else np.zeros((0, 3))
    return Orders(customer=data[:, 0].astype(np.int64),
                  day=np.floor(data[:, 1] + offset_days).astype(np.int64),
                  amount=np.maximum(data[:, 2], 0.0))


def live_customer_ids(session: Session) -> np.ndarray:
    """Ids of every customer not merged into another, sorted."""
    ids = session.scalars(sa.select(_customers.c.id).where(_customers.c.merged_into_id.is_(None))
                          .order_by(_customers.c.id)).all()
    return np.asarray(ids, dtype=np.int64)


def customers_with_other_currencies(session: Session, currency: str) -> tuple[np.ndarray, list[str]]:
    """Customers with orders in currencies other than `currency`, and those currencies."""
    codes = sorted(session.scalars(sa.select(_orders.c.currency).where(_orders.c.currency != currency).distinct()))
    if not codes:
        return np.zeros(0, dtype=np.int64), []
    ids = session.scalars(sa.select(_orders.c.customer_id).where(_orders.c.currency != currency).distinct()).all()
    return np.unique(np.asarray(ids, dtype=np.int64)), codes


def write_scores(session: Session, rows: Iterable[tuple], total: int,
                 on_chunk: Callable[[int, int], None] | None = None, chunk: int = WRITE_CHUNK) -> int:
    """Upsert score rows (tuples in SCORE_COLUMNS order) in chunks; `on_chunk(done, total)` after each."""
    done, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) >= chunk:
            insert_rows(session, _scores, SCORE_COLUMNS, batch, on_conflict=_UPSERT)
            done += len(batch)
            batch = []
            if on_chunk:
                on_chunk(done, total)
    if batch:
        insert_rows(session, _scores, SCORE_COLUMNS, batch, on_conflict=_UPSERT)
        done += len(batch)
        if on_chunk:
            on_chunk(done, total)
    return done


def drop_stale_scores(session: Session) -> int:
    """Delete rows of customers that were merged away (a merge normally drops them already)."""
    stale = sa.select(_customers.c.id).where(_customers.c.merged_into_id.is_not(None))
    return session.execute(sa.delete(_scores).where(_scores.c.customer_id.in_(stale))).rowcount or 0


# -- reading -----------------------------------------------------------------------------------------
def latest_run(session: Session) -> AnalyticsRun | None:
    """The newest finished refresh (a run still writing is not shown)."""
    return session.scalar(sa.select(AnalyticsRun).where(AnalyticsRun.status != "running")
                          .order_by(AnalyticsRun.id.desc()).limit(1))


def score_of(session: Session, customer_id: int) -> CustomerScore | None:
    return session.get(CustomerScore, customer_id)


def top_customers(session: Session, limit: int = 50) -> list[tuple[CustomerScore, Customer]]:
    """The customers with the highest predicted 12-month CLV (index on predicted_clv_12m)."""
    rows = session.execute(
        sa.select(CustomerScore, Customer).join(Customer, Customer.id == CustomerScore.customer_id)
        .where(CustomerScore.predicted_clv_12m.is_not(None))
        .order_by(CustomerScore.predicted_clv_12m.desc(), CustomerScore.customer_id).limit(limit)
    ).all()
    return [(s, c) for s, c in rows]
