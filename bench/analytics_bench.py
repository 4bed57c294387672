"""Benchmark `clm analytics refresh` on a synthetic shop of 1,000,000 customers in SQLite.

Customers buy by a BG/NBD-like process (a personal Poisson rate, a drop-out chance after each
purchase) over 18 months; customers and orders are written straight into a fresh SQLite file (the
ingestion pipeline has its own benchmark), then the refresh runs as the CLI runs it (commits per
chunk of written scores). Run ``python bench/analytics_bench.py [--quick]``; ``run(quick=False)``
returns the rows for ``python -m bench``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clm.analytics.refresh import refresh  # noqa: E402
from clm.analytics.scores import load_orders, utc_offset_days  # noqa: E402
from clm.commerce.models import Order  # noqa: E402
from clm.customers.models import Customer  # noqa: E402
from clm.db.bulk import insert_rows  # noqa: E402
from clm.db.engine import for_writing, make_engine, make_session_factory  # noqa: E402
from clm.db.migrate import upgrade  # noqa: E402

NOW = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
DAYS = 548
TZ = "Asia/Ho_Chi_Minh"


def purchases(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer index, days before NOW, amount VND) of every purchase, BG/NBD-like, vectorised."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, DAYS, n).astype(np.float64)
    rate = rng.gamma(0.7, 1 / 30, n)
    drop = rng.beta(1.0, 3.0, n)
    spend = rng.gamma(4.0, 60_000, n)
    who, when = [np.arange(n)], [first.copy()]
    day, alive = first.copy(), np.ones(n, dtype=bool)
    for _ in range(60):
        alive &= rng.random(n) > drop
        day = day - rng.exponential(1 / np.maximum(rate, 1e-6))
        alive &= day >= 0
        if not alive.any():
            break
        who.append(np.flatnonzero(alive))
        when.append(day[alive])
    idx = np.concatenate(who)
    ago = np.concatenate(when)
    amount = np.rint(spend[idx] * rng.gamma(8.0, 1 / 8.0, idx.size) / 1000) * 1000
    return idx, ago, amount


def build(path: Path, n: int) -> tuple[int, float]:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    idx, ago, amount = purchases(n)
    started = time.perf_counter()
    created = NOW - timedelta(days=DAYS + 1)
    with make_session_factory(engine)() as session:
        for_writing(session)
        customers = Customer.__table__
        for lo in range(0, n, 100_000):
            rows = [(i + 1, {}, "", created, created) for i in range(lo, min(n, lo + 100_000))]
            insert_rows(session, customers, ("id", "traits", "search_text", "created_at", "updated_at"), rows)
        orders = Order.__table__
        placed = [NOW - timedelta(days=float(a)) for a in ago]
        cols = ("external_id", "customer_id", "status", "currency", "total", "discount", "shipping", "tax", "refunded",
                "placed_at", "properties", "created_at", "updated_at")
        for lo in range(0, idx.size, 200_000):
            hi = min(idx.size, lo + 200_000)
            rows = [(f"SO-{j}", int(idx[j]) + 1, "completed", "VND", int(amount[j]), 0, 0, 0, 0, placed[j], {},
                     placed[j], placed[j]) for j in range(lo, hi)]
            insert_rows(session, orders, cols, rows)
        session.commit()
    engine.dispose()
    return int(idx.size), time.perf_counter() - started


def run(quick: bool = False) -> list[dict]:
    n = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "analytics.db"
        orders, build_s = build(path, n)
        engine = make_engine(f"sqlite:///{path}")
        factory = make_session_factory(engine)
        with factory() as session:
            started = time.perf_counter()
            load_orders(session, "VND", utc_offset_days(TZ, NOW))
            read_s = time.perf_counter() - started
        rows = []
        for model in ("auto", "bgnbd"):
            marks: dict[str, float] = {}
            with factory() as session:
                for_writing(session)
                started = time.perf_counter()

                def chunk(phase, _done, _total, session=session, marks=marks, started=started):
                    marks.setdefault(phase, time.perf_counter() - started)
                    if phase == "write":
                        session.commit()
                        for_writing(session)

                r = refresh(session, NOW, currency="VND", timezone=TZ, model=model, on_chunk=chunk)
                session.commit()
                total = time.perf_counter() - started
            rows.append({"customers": n, "orders": orders, "model asked": model, "model used": r.model,
                         "read orders s": round(read_s, 2), "read + fit + predict s": round(marks["write"], 1),
                         "refresh total s": round(total, 1), "scored": r.customers_scored,
                         "build db s": round(build_s, 1)})
        engine.dispose()
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    for row in run(quick=parser.parse_args().quick):
        print(row)
