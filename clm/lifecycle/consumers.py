"""The lifecycle's reactions: facts in, stats and stages out. Each is a worker step (session, now).

Outbox consumer: orders, refunds and merges refresh a customer's order facts, then their stage.
Events consumer: tails the `events` table (the log of tracked events) for engagement.
Both recompute rather than increment, so a row handled twice changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.lifecycle import stats
from clm.lifecycle.evaluate import evaluate
from clm.lifecycle.rules import RuleSet
from clm.outbox.models import OutboxEvent
from clm.tracking.models import Event
from clm.worker.tail import Tail

OUTBOX_TOPICS = ("order.completed", "order.refunded", "customer.created", "customer.merged")


def live_ids(session: Session, customer_ids: Iterable[int]) -> tuple[dict[int, int], set[int]]:
    """Where each customer lives now ({id: live id}, missing when deleted) and which were merged away."""
    ids = sorted(set(customer_ids))
    where, merged = {}, set()
    for start in range(0, len(ids), 1000):
        for cid, into in session.execute(sa.select(Customer.id, Customer.merged_into_id)
                                         .where(Customer.id.in_(ids[start:start + 1000]))):
            where[cid] = into or cid
            if into:
                merged.add(cid)
    return where, merged


class _ShopGap:
    """The shop-wide usual gap, recomputed at most every few minutes: it is a median over every repeat
    buyer, moves slowly, and costs an index scan that a consumer reacting to one order should not pay."""

    def __init__(self, ttl: float = 600.0):
        self.ttl = ttl
        self._value: tuple[float, float] | None = None

    def __call__(self, session: Session, rules: RuleSet) -> float:
        now = time.monotonic()
        if self._value is None or now - self._value[1] > self.ttl:
            self._value = (stats.shop_gap_days(session, rules.settings.default_gap_days), now)
        return self._value[0]


class OutboxConsumer:
    name = "lifecycle.outbox"

    def __init__(self, rules: Callable[[], RuleSet], batch: int = 1000, shop_gap: _ShopGap | None = None):
        outbox = OutboxEvent.__table__
        self.rules = rules
        self.shop_gap = shop_gap or _ShopGap()
        self.batch = batch
        self.tail = Tail(self.name, outbox, "created_at", ["topic", "customer_id", "payload"],
                         where=outbox.c.topic.in_(OUTBOX_TOPICS))

    def __call__(self, session: Session, now: datetime) -> int:
        rows = self.tail.read(session, self.batch)
        if not rows:
            self.tail.advance(session, rows)
            return 0
        touched: set[int] = set()
        for row in rows:
            if row.customer_id is not None:
                touched.add(row.customer_id)
            if row.topic == "customer.merged":
                touched.update(v for k in ("winner_id", "loser_id") if isinstance(v := row.payload.get(k), int))
        where, merged = live_ids(session, touched)
        stats.forget(session, merged)
        live = set(where.values())
        stats.refresh_orders(session, live)
        rules = self.rules()
        evaluate(session, rules, now, live, shop_gap=self.shop_gap(session, rules))
        self.tail.advance(session, rows)
        return len(rows)


class EventsConsumer:
    name = "lifecycle.events"

    def __init__(self, rules: Callable[[], RuleSet], batch: int = 5000, shop_gap: _ShopGap | None = None):
        self.rules = rules
        self.shop_gap = shop_gap or _ShopGap()
        self.batch = batch
        self.tail = Tail(self.name, Event.__table__, "received_at", ["customer_id", "timestamp"])

    def __call__(self, session: Session, now: datetime) -> int:
        rows = self.tail.read(session, self.batch)
        if not rows:
            self.tail.advance(session, rows)
            return 0
        where, _ = live_ids(session, {r.customer_id for r in rows})
        latest: dict[int, datetime] = {}
        for row in rows:
            cid = where.get(row.customer_id)
            if cid is not None and (cid not in latest or latest[cid] < row.timestamp):
                latest[cid] = row.timestamp
        stats.note_events(session, latest)
        rules = self.rules()
        evaluate(session, rules, now, latest, shop_gap=self.shop_gap(session, rules))
        self.tail.advance(session, rows)
        return len(rows)
