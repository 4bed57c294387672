"""Tickets and their messages on the customer's timeline: tracked events written with the ticket.

The customer is known by id, so the event row is written directly (with its daily rollup) instead of
going through identity resolution. Each event's messageId is derived from the ticket or message, so
writing it again (a retried request) stores nothing new. Segments and journeys see these events like
any other ("Ticket Opened", "Ticket Solved", "Ticket Message Received", "Ticket Reply Sent").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.bulk import insert_rows
from clm.db.upsert import insert_for
from clm.tracking.models import Event, EventDaily

OPENED, SOLVED, RECEIVED, REPLIED = "Ticket Opened", "Ticket Solved", "Ticket Message Received", "Ticket Reply Sent"
EXCERPT = 200


def excerpt(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


_BATCH = "service.timeline.batch"


@contextmanager
def batched(session: Session) -> Iterator[None]:
    """Within this block `record` collects the events and they are written together at its end (one
    INSERT of the events, one upsert per customer, name and day): the inbound batch (clm.service.inbound).
    Only for events whose messageId names a row made in the same transaction (a new ticket or message),
    so there is nothing stored before to look for."""
    pending: list[dict[str, Any]] = []
    session.info[_BATCH] = pending
    try:
        yield
    finally:
        session.info.pop(_BATCH, None)
    _write(session, pending)


def batch_mark(session: Session) -> int:
    """Where the collected events stand (for `batch_undo` when the work since is rolled back)."""
    return len(session.info.get(_BATCH, ()))


def batch_undo(session: Session, mark: int) -> None:
    del session.info.get(_BATCH, [])[mark:]


def _write(session: Session, pending: list[dict[str, Any]]) -> None:
    if not pending:
        return
    columns = list(pending[0])
    insert_rows(session, Event.__table__, columns, [tuple(row[c] for c in columns) for row in pending],
                on_conflict="ON CONFLICT (message_id) DO NOTHING")
    counts: dict[tuple[int, str, Any], int] = {}
    for row in pending:
        key = (row["customer_id"], row["name"], row["timestamp"].date())
        counts[key] = counts.get(key, 0) + 1
    daily = EventDaily.__table__
    stmt = insert_for(session, daily)
    session.execute(stmt.on_conflict_do_update(index_elements=["customer_id", "name", "day"],
                                               set_={"count": daily.c.count + stmt.excluded.count}),
                    [{"customer_id": c, "name": n, "day": d, "count": k} for (c, n, d), k in sorted(counts.items())])


def record(session: Session, customer_id: int, name: str, message_id: str, at: datetime,
           properties: dict[str, Any]) -> bool:
    """Put one event on the customer's timeline; False when it was already there."""
    pending = session.info.get(_BATCH)
    if pending is not None:
        pending.append({"message_id": message_id, "customer_id": customer_id, "type": "track", "name": name,
                        "properties": properties, "context": {"source": "service"}, "timestamp": at,
                        "received_at": at, "source": "service"})
        return True
    if session.scalar(sa.select(Event.id).where(Event.message_id == message_id)) is not None:
        return False
    session.add(Event(message_id=message_id, customer_id=customer_id, type="track", name=name,
                      properties=properties, context={"source": "service"}, timestamp=at, received_at=at,
                      source="service"))
    daily = EventDaily.__table__
    stmt = insert_for(session, daily).values(customer_id=customer_id, name=name, day=at.date(), count=1)
    session.execute(stmt.on_conflict_do_update(index_elements=["customer_id", "name", "day"],
                                               set_={"count": daily.c.count + 1}))
    session.flush()
    return True
