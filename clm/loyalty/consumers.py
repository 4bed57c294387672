"""The program's reactions, as worker steps (session, now) -> work done.

Outbox consumer: `order.completed` earns (pending through the return window), `order.refunded` reverses
the stored share, `customer.created` gives sign-up rules. Events consumer: tails `events` for the names
that active track rules name. Sweep: releases, expiries, tier reviews, referral rewards, birthday
points. Every reaction is keyed in the ledger, so a row handled twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.loyalty import earning, referrals, rules
from clm.loyalty.models import Program, RuleAward
from clm.loyalty.program import get_program
from clm.outbox.models import OutboxEvent
from clm.tracking.models import Event
from clm.worker.tail import Tail

TOPICS = ("order.completed", "order.refunded", "customer.created")


def _live_customer(session: Session, customer_id: int | None) -> int | None:
    if customer_id is None:
        return None
    row = session.execute(sa.select(Customer.id, Customer.merged_into_id).where(Customer.id == customer_id)).first()
    return None if row is None else (row.merged_into_id or row.id)


def handle_outbox_row(session: Session, program: Program, row, now: datetime) -> None:
    payload = row.payload or {}
    if row.topic == "order.completed" and isinstance(payload.get("order_id"), int):
        earning.earn_order(session, program, payload["order_id"], now)
    elif row.topic == "order.refunded" and isinstance(payload.get("order_id"), int):
        amount = payload.get("amount")
        earning.refund_order(session, program, payload["order_id"], int(amount or 0), str(row.id), now)
        referrals.on_refund(session, payload["order_id"])
    elif row.topic == "customer.created":
        customer_id = _live_customer(session, row.customer_id)
        if customer_id is None:
            return
        joined = session.scalar(sa.select(Customer.created_at).where(Customer.id == row.customer_id)) or now
        for rule in rules.active_rules(session, joined, "event"):
            if rule.config.get("trigger") == "signup":
                earning.earn_event(session, program, rule, customer_id, f"signup:{row.customer_id}", joined, now,
                                   f"Welcome: {rule.name}")


def handle_outbox_rows(session: Session, program: Program, rows, now: datetime) -> None:
    """Handle `rows` in their order; each run of `order.completed` rows earns as one batch
    (`batch_earning.earn_orders`: a few statements for the whole run, not a few dozen per order)."""
    from clm.loyalty.batch_earning import earn_orders

    completed: list[int] = []
    for row in rows:
        order_id = (row.payload or {}).get("order_id")
        if row.topic == "order.completed" and isinstance(order_id, int):
            completed.append(order_id)
            continue
        if completed:
            earn_orders(session, program, completed, now)
            completed = []
        handle_outbox_row(session, program, row, now)
    if completed:
        earn_orders(session, program, completed, now)


class OutboxConsumer:
    name = "loyalty.outbox"

    def __init__(self, batch: int = 500):
        outbox = OutboxEvent.__table__
        self.batch = batch
        self.tail = Tail(self.name, outbox, "created_at", ["topic", "customer_id", "payload", "created_at"],
                         where=outbox.c.topic.in_(TOPICS))

    def __call__(self, session: Session, now: datetime) -> int:
        rows = self.tail.read(session, self.batch)
        program = get_program(session)
        if rows and program is not None and program.active:
            handle_outbox_rows(session, program, rows, now)
        self.tail.advance(session, rows)
        return len(rows)


class EventsConsumer:
    """Tracked events that active track rules name; other events are scanned past by id, never read."""

    name = "loyalty.events"

    def __init__(self, batch: int = 2000):
        self.batch = batch
        self.tail = Tail(self.name, Event.__table__, "received_at", ["customer_id", "name", "properties", "timestamp"],
                         where=sa.false())

    def __call__(self, session: Session, now: datetime) -> int:
        program = get_program(session)
        track = [(r, rules.EventConfig.model_validate(r.config)) for r in rules.active_rules(session, now, "event")
                 if r.config.get("trigger") == "track"] if program is not None and program.active else []
        names = sorted({c.event for _, c in track})
        self.tail.where = Event.__table__.c.name.in_(names) if names else sa.false()
        rows = self.tail.read(session, self.batch)
        for row in rows:
            customer_id = _live_customer(session, row.customer_id)
            if customer_id is None:
                continue
            for rule, config in track:
                if config.event == row.name and row.timestamp >= program.created_at and rules.matches(
                        config, row.properties or {}) and (
                        rule.starts_at is None or rule.starts_at <= row.timestamp) and (
                        rule.ends_at is None or row.timestamp < rule.ends_at):
                    earning.earn_event(session, program, rule, customer_id, f"event:{row.id}", row.timestamp, now,
                                       f"{row.name}: {rule.name}")
        self.tail.advance(session, rows)
        return len(rows)


def birthday_points(session: Session, program: Program, now: datetime, limit: int = 5000) -> int:
    """Birthday-month rules: each customer born this month (business time) gets the points once a year."""
    zone = ZoneInfo(program.timezone)
    local = now.astimezone(zone)
    start = datetime(local.year, local.month, 1, tzinfo=zone)
    given = 0
    for rule in rules.active_rules(session, now, "event"):
        if rule.config.get("trigger") != "birthday":
            continue
        already = sa.select(RuleAward.customer_id).where(RuleAward.rule_id == rule.id,
                                                         RuleAward.created_at >= start.astimezone(now.tzinfo))
        ids = list(session.scalars(sa.select(Customer.id).where(
            Customer.birthday.is_not(None), sa.extract("month", Customer.birthday) == local.month,
            Customer.merged_into_id.is_(None), Customer.id.not_in(already)).order_by(Customer.id).limit(limit)))
        for customer_id in ids:
            if earning.earn_event(session, program, rule, customer_id, f"birthday:{local.year}:{customer_id}", now,
                                  now, f"Happy birthday: {rule.name}"):
                given += 1
    return given


def sweep_step(on_chunk: Callable[[Session], None] | None = None):
    """The periodic step: everything the program does by time."""
    from clm.loyalty.sweep import sweep

    def run(session: Session, now: datetime) -> int:
        program = get_program(session)
        if program is None or not program.active:
            return 0
        done = sweep(session, now, on_chunk=(lambda: on_chunk(session)) if on_chunk else None)
        return done + birthday_points(session, program, now)

    return run
