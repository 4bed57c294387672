"""A shop with a purchase history, made through the real ingestion pipeline, for the analytics tests.

Customers buy on random days of the last 300 (at 10:00 local time, so the local day is never in
doubt); the orders are kept in `Book.orders` too, so a test can call the CLV library on exactly the
same transactions and compare.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Identity
from clm.tracking.ingest import ingest

NOW = datetime(2025, 9, 1, 5, 0, tzinfo=UTC)  # 12:00 in Hồ Chí Minh City
TZ = "Asia/Ho_Chi_Minh"
LOCAL = ZoneInfo(TZ)


@dataclass
class Book:
    ids: dict[str, int] = field(default_factory=dict)  # user id -> customer id
    orders: list[tuple[str, datetime, int]] = field(default_factory=list)  # user id, placed at, VND

    def transactions(self) -> dict[str, np.ndarray]:
        """The orders as the CLV library reads them: customer id, local date, amount."""
        return {"customer": np.array([self.ids[u] for u, _, _ in self.orders]),
                "date": np.array([at.astimezone(LOCAL).date().isoformat() for _, at, _ in self.orders],
                                 dtype="datetime64[D]"),
                "amount": np.array([a for _, _, a in self.orders], dtype=np.float64)}


def build_shop(db: Session, buyers: int = 120, idle: int = 3, seed: int = 7, now: datetime = NOW,
               usd_only: int = 1) -> Book:
    """`buyers` customers with BG/NBD-like purchases, `idle` without orders, `usd_only` with only USD orders."""
    rng = np.random.default_rng(seed)
    book, messages, seq = Book(), [], 0
    local_today = now.astimezone(LOCAL).date()

    def at_day(days_ago: int) -> datetime:
        d = local_today - timedelta(days=int(days_ago))
        return datetime(d.year, d.month, d.day, 10, 0, tzinfo=LOCAL).astimezone(UTC)

    people = [(f"buyer-{i}", "VND") for i in range(buyers)] + [(f"idle-{i}", None) for i in range(idle)] + [
        (f"tourist-{i}", "USD") for i in range(usd_only)]
    for user_id, currency in people:
        first = int(rng.integers(20, 300)) if currency else 5
        seq += 1
        messages.append({"type": "identify", "userId": user_id, "messageId": f"id-{seq}",
                         "timestamp": at_day(first).isoformat(), "traits": {"name": f"Khách {user_id}"}})
        if currency is None:
            continue
        days = [first]
        if currency == "VND":  # BG/NBD-like: purchases at a personal rate until a drop-out after some purchase
            rate, drop = rng.gamma(0.8, 1 / 25), rng.beta(1.0, 3.0)
            day = float(first)
            while rng.random() > drop:
                day -= rng.exponential(1 / rate)
                if day < 0:
                    break
                days.append(int(day))
        days = sorted(set(days), reverse=True)
        for day in days:
            seq += 1
            amount = int(rng.integers(1, 20)) * 50_000 if currency == "VND" else 25
            placed = at_day(day)
            messages.append({"type": "track", "userId": user_id, "event": "Order Completed", "messageId": f"o-{seq}",
                             "timestamp": placed.isoformat(),
                             "properties": {"order_id": f"SO-{seq}", "total": amount, "currency": currency,
                                            "products": []}})
            if currency == "VND":
                book.orders.append((user_id, placed, amount))
    result = ingest(db, messages, received_at=now)
    assert not result.rejected, result.rejected
    db.commit()
    for user_id, cid in db.execute(sa.select(Identity.value, Identity.customer_id).where(Identity.kind == "user_id")):
        book.ids[user_id] = cid
    return book
