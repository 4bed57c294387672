"""Keeping `customer_stats` true to the facts: recomputed per customer from orders and events.

Recomputing (rather than incrementing) makes every update idempotent: a fact handled twice, a refund,
or orders moved by a merge all end in the same row.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime
from statistics import median

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.models import Order
from clm.db.upsert import insert_for
from clm.lib.clock import utcnow
from clm.lifecycle.models import CustomerStats
from clm.tracking.models import Event

_orders = Order.__table__
_stats = CustomerStats.__table__
_events = Event.__table__
_ORDER_COLUMNS = ("orders_count", "revenue", "refunded_orders", "first_order_at", "last_order_at", "median_gap_days")


def _order_rows(session: Session, where) -> dict[int, dict]:
    """Order facts per customer for the customers matching `where` (a condition on orders.customer_id)."""
    kept = _orders.c.status != "refunded"
    rows: dict[int, dict] = {}
    for cid, count, revenue, refunded in session.execute(
        sa.select(_orders.c.customer_id, sa.func.sum(sa.case((kept, 1), else_=0)),
                  sa.func.sum(_orders.c.total - _orders.c.refunded), sa.func.sum(sa.case((_orders.c.refunded > 0, 1), else_=0)))
        .where(where).group_by(_orders.c.customer_id)
    ):
        rows[cid] = {"customer_id": cid, "orders_count": int(count or 0), "revenue": int(revenue or 0),
                     "refunded_orders": int(refunded or 0), "first_order_at": None, "last_order_at": None,
                     "median_gap_days": None}
    current, times = None, []

    def finish() -> None:
        if current is None or not times:
            return
        row = rows.get(current)
        if row is None:  # its first order committed between the two reads: its own outbox event refreshes it
            return
        row["first_order_at"], row["last_order_at"] = times[0], times[-1]
        if len(times) > 1:
            row["median_gap_days"] = median((b - a).total_seconds() / 86400 for a, b in itertools.pairwise(times))

    # Placed times in customer order, streamed: the gaps between consecutive kept orders.
    for cid, placed_at in session.execute(
        sa.select(_orders.c.customer_id, _orders.c.placed_at).where(where, kept)
        .order_by(_orders.c.customer_id, _orders.c.placed_at)
    ):
        if cid != current:
            finish()
            current, times = cid, []
        times.append(placed_at)
    finish()
    return rows


def refresh_orders(session: Session, customer_ids: Iterable[int]) -> None:
    """Recompute the order facts of these customers (those without orders get zeros)."""
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), 1000):
        chunk = ids[start:start + 1000]
        rows = _order_rows(session, _orders.c.customer_id.in_(chunk))
        empty = {"orders_count": 0, "revenue": 0, "refunded_orders": 0, "first_order_at": None,
                 "last_order_at": None, "median_gap_days": None}
        _upsert(session, [rows.get(cid) or {"customer_id": cid, **empty} for cid in chunk], _ORDER_COLUMNS)


def note_events(session: Session, latest: dict[int, datetime]) -> None:
    """Record each customer's latest event time (kept as the maximum, so replays change nothing)."""
    if not latest:
        return
    stmt = insert_for(session, _stats)
    greatest = sa.case((sa.or_(_stats.c.last_event_at.is_(None), _stats.c.last_event_at < stmt.excluded.last_event_at),
                        stmt.excluded.last_event_at), else_=_stats.c.last_event_at)
    stmt = stmt.on_conflict_do_update(index_elements=["customer_id"],
                                      set_={"last_event_at": greatest, "updated_at": stmt.excluded.updated_at})
    now = utcnow()
    session.execute(stmt, [_blank(cid, now) | {"last_event_at": at} for cid, at in sorted(latest.items())])


def rebuild_range(session: Session, first_id: int, last_id: int) -> int:
    """Recompute every stats row for customers first_id..last_id from orders and events; returns rows."""
    rows = _order_rows(session, _orders.c.customer_id.between(first_id, last_id))
    now = utcnow()
    for cid, at in session.execute(
        sa.select(_events.c.customer_id, sa.func.max(_events.c.timestamp))
        .where(_events.c.customer_id.between(first_id, last_id)).group_by(_events.c.customer_id)
    ):
        rows.setdefault(cid, _blank(cid, now))["last_event_at"] = at
    session.execute(sa.delete(_stats).where(_stats.c.customer_id.between(first_id, last_id)))
    if rows:
        session.execute(sa.insert(_stats), [_blank(cid, now) | row for cid, row in sorted(rows.items())])
    return len(rows)


def _blank(cid: int, now: datetime) -> dict:
    return {"customer_id": cid, "orders_count": 0, "revenue": 0, "refunded_orders": 0, "first_order_at": None,
            "last_order_at": None, "median_gap_days": None, "last_event_at": None, "updated_at": now}


def _upsert(session: Session, rows: list[dict], columns: tuple[str, ...]) -> None:
    if not rows:
        return
    now = utcnow()
    stmt = insert_for(session, _stats)
    stmt = stmt.on_conflict_do_update(
        index_elements=["customer_id"], set_={c: stmt.excluded[c] for c in (*columns, "updated_at")}
    )
    session.execute(stmt, [_blank(r["customer_id"], now) | r for r in rows])


def forget(session: Session, customer_ids: Iterable[int]) -> None:
    """Drop the stats of merged-away customers (their facts now count for the winner)."""
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), 1000):
        session.execute(sa.delete(_stats).where(_stats.c.customer_id.in_(ids[start:start + 1000])))


def shop_gap_days(session: Session, default: float) -> float:
    """The shop-wide usual gap: the median of customers' median gaps (via the index), or `default`."""
    col = _stats.c.median_gap_days
    count = session.scalar(sa.select(sa.func.count()).where(col.is_not(None))) or 0
    if not count:
        return default
    value = session.scalar(sa.select(col).where(col.is_not(None)).order_by(col).offset((count - 1) // 2).limit(1))
    return float(value)
