"""Customer events written by the channels (Email Opened, Email Link Clicked, Unsubscribed, ...).

They go to the `events` log like tracked events, so they show on the customer's timeline, count in
daily rollups and can drive segments and journeys. `key` makes each one idempotent: the same key
(stored as the event's message id) is written once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from clm.db.bulk import insert_rows
from clm.db.upsert import insert_for
from clm.lib.clock import utcnow
from clm.tracking.models import Event, EventDaily

_DAILY_UPSERT = "ON CONFLICT (customer_id, name, day) DO UPDATE SET count = event_daily.count + excluded.count"


def record_customer_event(session: Session, customer_id: int, name: str, properties: dict[str, Any], *, key: str,
                          at: datetime | None = None) -> bool:
    """Write a track event `name` for the customer once per `key`; False when it was written before."""
    at = at or utcnow()
    stmt = insert_for(session, Event).values(
        message_id=key, customer_id=customer_id, type="track", name=name, properties=properties, context={},
        timestamp=at, received_at=utcnow(), source="channels")
    new_id = session.execute(stmt.on_conflict_do_nothing(index_elements=["message_id"])
                             .returning(Event.__table__.c.id)).scalar()
    if new_id is None:
        return False
    insert_rows(session, EventDaily.__table__, ("customer_id", "name", "day", "count"),
                [(customer_id, name, at.date(), 1)], on_conflict=_DAILY_UPSERT)
    return True
