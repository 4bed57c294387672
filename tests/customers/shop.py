"""A small builder of shop data through the real ingestion pipeline, shared by the API tests.

Each call ingests Segment messages with explicit times (relative to `T0`) and commits, so the API,
which reads through its own sessions on the test's connection, sees the result.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.commerce.models import Order
from clm.customers.models import Customer
from clm.tracking.ingest import ingest
from clm.tracking.models import Event

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class Shop:
    def __init__(self, db: Session):
        self.db = db
        self._seq = itertools.count(1)
        self.user_ids: dict[int, str] = {}

    def _ingest(self, messages: list[dict[str, Any]], at: datetime) -> list[int]:
        for m in messages:
            m.setdefault("messageId", f"msg-{next(self._seq)}")
            m.setdefault("timestamp", at.isoformat())
        result = ingest(self.db, messages, received_at=at)
        assert not result.rejected, result.rejected
        self.db.commit()
        return result.customer_ids

    def customer(self, name: str | None = None, *, at: timedelta = timedelta(0), user_id: str | None = None,
                 **traits: Any) -> Customer:
        """A customer made by an identify call; `traits` are Segment traits (email, phone, city...)."""
        user_id = user_id or f"user-{next(self._seq)}"
        if name:
            traits["name"] = name
        [customer_id] = self._ingest([{"type": "identify", "userId": user_id, "traits": traits}], T0 + at)
        self.user_ids[customer_id] = user_id
        return self.db.get(Customer, customer_id)

    def track(self, customer: Customer, event: str, *, at: timedelta = timedelta(0), **properties: Any) -> Event:
        message_id = f"msg-{next(self._seq)}"
        self._ingest([{"type": "track", "userId": self.user_ids[customer.id], "event": event,
                       "messageId": message_id, "properties": properties}], T0 + at)
        return self.db.scalar(sa.select(Event).where(Event.message_id == message_id))

    def order(self, customer: Customer, total: int | float, *, at: timedelta = timedelta(0), currency: str = "VND",
              items: list[tuple[str, str, int | float, int]] = (), order_id: str | None = None) -> Order:
        """An "Order Completed" event; `items` are (sku, name, unit price, quantity)."""
        order_id = order_id or f"SO-{next(self._seq)}"
        products = [{"product_id": sku, "name": n, "price": p, "quantity": q} for sku, n, p, q in items]
        self.track(customer, "Order Completed", at=at, order_id=order_id, total=total, currency=currency,
                   products=products)
        return self.db.scalar(sa.select(Order).where(Order.external_id == order_id))
