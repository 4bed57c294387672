"""Tickets and their messages on the customer's timeline: tracked events written with the ticket.

The customer is known by id, so the event row is written directly (with its daily rollup) instead of
going through identity resolution. Each event's messageId is derived from the ticket or message, so
writing it again (a retried request) stores nothing new. Segments and journeys see these events like
any other ("Ticket Opened", "Ticket Solved", "Ticket Message Received", "Ticket Reply Sent").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.upsert import insert_for
from clm.tracking.models import Event, EventDaily

OPENED, SOLVED, RECEIVED, REPLIED = "Ticket Opened", "Ticket Solved", "Ticket Message Received", "Ticket Reply Sent"
EXCERPT = 200


def excerpt(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def record(session: Session, customer_id: int, name: str, message_id: str, at: datetime,
           properties: dict[str, Any]) -> bool:
    """Put one event on the customer's timeline; False when it was already there."""
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
