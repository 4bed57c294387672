"""Reading stored events back: filtered, newest first, in keyset pages."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.lib import cursor
from clm.lib.clock import as_utc
from clm.tracking.models import Event


def list_events(session: Session, *, customer_id: int | None = None, name: str | None = None,
                type: str | None = None, since: datetime | None = None, until: datetime | None = None,
                after: str | None = None, limit: int = 50) -> tuple[list[Event], str | None]:
    """Events matching every given filter, newest first; returns a page and the cursor of the next one.

    `since` is inclusive and `until` exclusive (naive datetimes are UTC); `after` is a `next` cursor.
    """
    query = sa.select(Event)
    if customer_id is not None:
        query = query.where(Event.customer_id == customer_id)
    if name is not None:
        query = query.where(Event.name == name)
    if type is not None:
        query = query.where(Event.type == type)
    if since is not None:
        query = query.where(Event.timestamp >= as_utc(since))
    if until is not None:
        query = query.where(Event.timestamp < as_utc(until))
    return cursor.page_newest_first(session, query, Event.timestamp, Event.id, after, limit)
