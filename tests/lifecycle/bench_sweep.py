"""How long the lifecycle sweep takes on a big shop: `python -m tests.lifecycle.bench_sweep URL [N]`.

Fills an empty database with N customers (default 1,000,000): 40% buyers with 1-8 orders' worth of
stats spread over the last 400 days, 30% engaged non-buyers (a product view), 30% known only. Then
times: the first sweep (everyone gets a stage), a sweep 30 days later (time moves buyers to at risk /
churned), and a sweep with nothing to move (the cost of checking everyone).
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from clm.customers.models import Customer
from clm.db.engine import make_engine, make_session_factory
from clm.db.migrate import upgrade
from clm.lifecycle.models import CustomerStats
from clm.lifecycle.rules import load_rules
from clm.lifecycle.service import sweep
from clm.tracking.models import EventDaily

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def fill(session_factory, n: int) -> None:
    rng = random.Random(7)
    chunk = 50_000
    for start in range(1, n + 1, chunk):
        ids = range(start, min(start + chunk, n + 1))
        customers, stats, daily = [], [], []
        for cid in ids:
            customers.append({"id": cid, "full_name": f"Khách {cid}", "traits": {}, "search_text": "",
                              "created_at": NOW, "updated_at": NOW})
            kind = rng.random()
            if kind < 0.4:
                orders = rng.randint(1, 8)
                last = NOW - timedelta(days=rng.uniform(0, 400))
                gap = rng.uniform(5, 60) if orders > 1 else None
                stats.append({"customer_id": cid, "orders_count": orders, "revenue": orders * 250_000,
                              "refunded_orders": 0, "first_order_at": last - timedelta(days=(gap or 0) * (orders - 1)),
                              "last_order_at": last, "median_gap_days": gap, "last_event_at": last, "updated_at": NOW})
            elif kind < 0.7:
                seen = NOW - timedelta(days=rng.uniform(0, 400))
                stats.append({"customer_id": cid, "orders_count": 0, "revenue": 0, "refunded_orders": 0,
                              "first_order_at": None, "last_order_at": None, "median_gap_days": None,
                              "last_event_at": seen, "updated_at": NOW})
                daily.append({"customer_id": cid, "name": "Product Viewed", "day": seen.date(), "count": 1})
        with session_factory() as session:
            session.execute(sa.insert(Customer.__table__), customers)
            session.execute(sa.insert(CustomerStats.__table__), stats)
            session.execute(sa.insert(EventDaily.__table__), daily)
            session.commit()


def timed(session_factory, at: datetime, label: str) -> None:
    rules = load_rules()
    with session_factory() as session:
        started = time.perf_counter()
        moved = sweep(session, at, rules, on_chunk=lambda *_: session.commit())
        session.commit()
        print(f"{label:<34} {moved:>9} moves  {time.perf_counter() - started:7.1f} s", flush=True)


def main() -> None:
    url = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    upgrade(engine)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    fill(factory, n)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:  # ids were given explicitly: move the sequence past them
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('customers', 'id'), max(id)) FROM customers")
            conn.exec_driver_sql("ANALYZE")
    print(f"{engine.dialect.name}: {n} customers filled in {time.perf_counter() - started:.1f} s", flush=True)
    timed(factory, NOW, "first sweep (everyone placed)")
    timed(factory, NOW + timedelta(days=30), "sweep 30 days later")
    timed(factory, NOW + timedelta(days=30), "sweep with nothing to move")


if __name__ == "__main__":
    main()
