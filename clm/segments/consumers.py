"""Segment membership's reactions, as worker steps (session, now) -> work done.

Outbox consumer: profile changes, consents, orders, stage moves, merges re-check the customers they name,
against only the segments that read that kind of fact. Events consumer: tails the `events` table and
re-checks the customers who did something, against the segments counting those event names (and those
reading first/last seen). Sweep: segments whose answer changes with the clock alone, for everyone.
Run after the lifecycle steps, so customer_stats and stages already reflect the facts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.db.engine import for_writing
from clm.outbox.models import OutboxEvent
from clm.segments import membership
from clm.segments.models import Segment
from clm.segments.sizes import record_sizes
from clm.tracking.models import Event
from clm.worker.tail import Tail

SWEEP_MINUTES = 15
# What each outbox topic can change; "*" re-checks every dynamic segment (a new or merged customer).
TOPICS = {"customer.created": "*", "customer.merged": "*", "customer.updated": "profile",
          "consent.changed": "consent", "order.completed": "orders", "order.refunded": "orders",
          "stage.changed": "stage", "loyalty.points_changed": "loyalty", "loyalty.tier_changed": "loyalty"}


def _segments(session: Session) -> list[Segment]:
    return list(session.scalars(sa.select(Segment).where(Segment.kind == "dynamic").order_by(Segment.id)))


def _live(session: Session, ids: set[int]) -> set[int]:
    """The customers the ids name now (a merged-away id and its winner both, so the loser leaves)."""
    out = set(ids)
    items = sorted(ids)
    for start in range(0, len(items), 1000):
        out.update(i for i in session.scalars(sa.select(Customer.merged_into_id).where(
            Customer.id.in_(items[start:start + 1000]), Customer.merged_into_id.is_not(None))))
    return out


def recheck_by_kind(session: Session, touched: dict[str, set[int]], now: datetime, timezone: str) -> int:
    """Re-check, for each dynamic segment, the customers touched by a kind of fact it reads."""
    change = membership.recheck_many(session, _wanted(session, touched), now, timezone)
    return change.entered + change.exited


def _wanted(session: Session, touched: dict[str, set[int]]) -> list[tuple[Segment, set[int]]]:
    """(segment, customers to re-check) for the segments that read a kind of fact these customers got."""
    everyone = touched.pop("*", set())
    wanted = []
    for segment in _segments(session):
        deps = set(segment.depends_on or ())
        ids = set(everyone)
        for kind, customers in touched.items():
            if kind in deps:
                ids |= customers
        if ids:
            wanted.append((segment, ids))
    return wanted


def _react(session: Session, tail: Tail, rows: list, plan, now: datetime) -> None:
    """The second half of a consumer step: `plan` was computed in a read transaction (the worker's write
    transaction is given back first, so ingestion is not held up while segments are evaluated); now,
    in a write transaction, the entries and exits are recorded and the cursor moves on."""
    session.commit()
    for_writing(session)
    membership.apply_plan(session, plan, now)
    tail.advance(session, rows)


class _TailConsumer:
    """Reads the next rows of its tail in a read transaction, plans the re-checks of the customers they touched
    (`_touched`: kind of fact -> customer ids), then records them and moves the cursor (_react)."""

    name: str
    tail: Tail
    batch: int
    timezone: Callable[[], str]

    def __call__(self, session: Session, now: datetime) -> int:
        session.commit()  # read without the write lock (see _react)
        rows = self.tail.read(session, self.batch)
        plan = []
        if rows:
            plan = membership.plan_many(session, _wanted(session, self._touched(session, rows)), now, self.timezone())
        _react(session, self.tail, rows, plan, now)
        return len(rows)

    def _touched(self, session: Session, rows: list) -> dict[str, set[int]]:
        raise NotImplementedError


class OutboxConsumer(_TailConsumer):
    name = "segments.outbox"

    def __init__(self, timezone: Callable[[], str] = lambda: "Asia/Ho_Chi_Minh", batch: int = 2000):
        outbox = OutboxEvent.__table__
        self.timezone = timezone
        self.batch = batch
        self.tail = Tail(self.name, outbox, "created_at", ["topic", "customer_id", "payload"],
                         where=outbox.c.topic.in_(list(TOPICS)))

    def _touched(self, session: Session, rows: list) -> dict[str, set[int]]:
        touched: dict[str, set[int]] = defaultdict(set)
        for row in rows:
            ids = {row.customer_id} if row.customer_id is not None else set()
            if row.topic == "customer.merged":
                ids |= {v for k in ("winner_id", "loser_id") if isinstance(v := row.payload.get(k), int)}
            touched[TOPICS[row.topic]] |= ids
        return {k: _live(session, v) for k, v in touched.items()}


class EventsConsumer(_TailConsumer):
    name = "segments.events"

    def __init__(self, timezone: Callable[[], str] = lambda: "Asia/Ho_Chi_Minh", batch: int = 5000):
        self.timezone = timezone
        self.batch = batch
        self.tail = Tail(self.name, Event.__table__, "received_at", ["customer_id", "name", "type"])

    def _touched(self, session: Session, rows: list) -> dict[str, set[int]]:
        touched: dict[str, set[int]] = defaultdict(set)
        for row in rows:
            touched[f"event:{row.name or row.type}"].add(row.customer_id)
            touched["seen"].add(row.customer_id)
        live = _live(session, {r.customer_id for r in rows})
        return {k: v & live for k, v in touched.items()}


def sweep(session: Session, now: datetime, timezone: str = "Asia/Ho_Chi_Minh", on_chunk=None) -> int:
    """Refresh every dynamic segment whose answer changes with time alone (or reads scores), then record
    every segment's size for today (segment_sizes)."""
    changed = 0
    for segment in _segments(session):
        if "time" in (segment.depends_on or ()):
            change = membership.refresh(session, segment, now, timezone, on_chunk=on_chunk)
            changed += change.entered + change.exited
    record_sizes(session, now, timezone)
    return changed
