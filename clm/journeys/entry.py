"""Entering customers into a journey: re-entry rules, one open run per customer, entries once per cause.

`enter` takes (customer, entry key, context) triples. The entry key names the cause (an event id, an
outbox row, a day, an API call's key): a run is unique by (journey, entry key), so a consumer that
handles the same fact twice enters nobody twice. Runs are written in bulk and start at the graph's
start node: their first step is queued with `enqueue_many` (COPY on PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Customer
from clm.db.upsert import insert_for
from clm.jobs import queue
from clm.journeys import definition as d
from clm.journeys import engine
from clm.journeys import models as m
from clm.journeys.models import Journey, JourneyRun, JourneyVersion

_runs = JourneyRun.__table__
CHUNK = 1000


@dataclass(frozen=True)
class Live:
    """An active journey with its current version's graph."""

    journey: Journey
    version_id: int
    graph: d.Definition


def live_journeys(session: Session, trigger_types: tuple[str, ...] | None = None) -> list[Live]:
    """Active journeys (of these trigger types), each with its current version's graph."""
    query = (sa.select(Journey, JourneyVersion.id)
             .join(JourneyVersion, sa.and_(JourneyVersion.journey_id == Journey.id,
                                           JourneyVersion.number == Journey.version))
             .where(Journey.state == m.ACTIVE).order_by(Journey.id))
    if trigger_types is not None:
        query = query.where(Journey.trigger_type.in_(trigger_types))
    return [Live(j, vid, engine.graph_of(session, vid)) for j, vid in session.execute(query)]


def _allowed(session: Session, live: Live, customer_ids: list[int], now: datetime) -> set[int]:
    """The customers the entry settings let in now: no open run, and re-entry allows another."""
    entry = live.graph.entry
    rows = session.execute(
        sa.select(_runs.c.customer_id, sa.func.max(_runs.c.entered_at),
                  sa.func.count(_runs.c.id).filter(_runs.c.ended_at.is_(None)))
        .where(_runs.c.journey_id == live.journey.id, _runs.c.customer_id.in_(customer_ids))
        .group_by(_runs.c.customer_id)).all()
    blocked = set()
    for customer_id, last, open_runs in rows:
        if open_runs or entry.reentry == "never" or (
                entry.reentry == "after_days" and last > now - timedelta(days=entry.reentry_days or 0)):
            blocked.add(customer_id)
    live_ids = set(session.scalars(sa.select(Customer.id).where(Customer.id.in_(customer_ids),
                                                                Customer.merged_into_id.is_(None))))
    return live_ids - blocked


def enter(session: Session, live: Live, entries: list[tuple[int, str, dict[str, Any]]], now: datetime,
          timezone: str) -> list[int]:
    """Enter customers (customer id, entry key, context) the settings allow; returns the new run ids."""
    graph = live.graph
    status, due, event = engine.arrival(graph.node(graph.start), now, timezone)
    goal_until = now + timedelta(days=graph.goal.within_days) if graph.goal else None
    created: list[int] = []
    entries = list({cid: (cid, key, ctx) for cid, key, ctx in entries}.values())  # one entry per customer
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start:start + CHUNK]
        allowed = _allowed(session, live, [cid for cid, _, _ in chunk], now)
        rows = [{"journey_id": live.journey.id, "version_id": live.version_id, "customer_id": cid, "status": status,
                 "node_id": graph.start, "seq": 1, "entry_key": key[:255], "context": ctx, "variant": None,
                 "wait_event": event, "due_at": due, "goal_until": goal_until, "entered_at": now,
                 "updated_at": now} for cid, key, ctx in chunk if cid in allowed]
        if not rows:
            continue
        # Conflicts (an entry key seen before, a run opened meanwhile by another worker) are skipped. The
        # rows go as parameters of one cached statement (SQLAlchemy's "insertmanyvalues" batches them with
        # RETURNING): a 1,000-row VALUES list compiled afresh cost more than writing it.
        ids = list(session.execute(insert_for(session, _runs).on_conflict_do_nothing().returning(_runs.c.id),
                                   rows).scalars())
        queue.enqueue_many(session, engine.STEP_KIND, [engine.step_args(i, 1) for i in ids], run_at=due,
                           max_attempts=engine.STEP_ATTEMPTS, now=now)
        created += ids
    return created


def enter_one(session: Session, journey_id: int, customer_id: int, key: str, context: dict[str, Any],
              now: datetime, timezone: str) -> int | None:
    """Enter one customer into an active journey (the API trigger); the run id, or None when not let in."""
    live = [lv for lv in live_journeys(session) if lv.journey.id == journey_id]
    if not live:
        return None
    ids = enter(session, live[0], [(customer_id, key, context)], now, timezone)
    return ids[0] if ids else None


def end_runs(session: Session, journey_id: int, customer_ids: list[int] | None, status: str, reason: str,
             now: datetime) -> int:
    """End the open runs of a journey (of these customers); their queued steps become stale."""
    query = sa.update(_runs).where(_runs.c.journey_id == journey_id, _runs.c.ended_at.is_(None))
    if customer_ids is not None:
        query = query.where(_runs.c.customer_id.in_(customer_ids))
    values = {"status": status, "ended_at": now, "exit_reason": reason, "updated_at": now, "due_at": None,
              "wait_event": None, "seq": _runs.c.seq + 1}
    if status == m.CONVERTED:
        values["converted_at"] = now
    return session.execute(query.values(**values)).rowcount or 0
