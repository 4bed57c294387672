"""Ready-made segments: the RFM segments and the everyday lifecycle questions, installed by `clm demo`
(and by `clm segments install-ready`). Installing twice adds nothing: existing names are kept."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.analytics.rfm import SEGMENTS as RFM_SEGMENTS
from clm.segments.models import Segment
from clm.segments.service import save_segment

READY: list[tuple[str, str, dict]] = [
    ("At risk VIPs", "Spent in the top tier but P(alive) has dropped under 0.5.",
     {"all": [{"type": "score", "field": "m_score", "op": "gte", "value": 4},
              {"type": "score", "field": "p_alive", "op": "lt", "value": 0.5}]}),
    ("New this week", "Profiles first seen in the last 7 days.",
     {"type": "profile", "field": "first_seen_at", "op": "within_last_days", "value": 7}),
    ("One-time buyers 30-90 days ago", "Exactly one order, placed 30 to 90 days ago: time for a second.",
     {"all": [{"type": "orders", "metric": "count", "op": "eq", "value": 1},
              {"type": "orders", "metric": "last_order_at", "op": "more_than_days_ago", "value": 30},
              {"type": "orders", "metric": "last_order_at", "op": "within_last_days", "value": 90}]}),
    ("Birthday this week", "Birthday today or in the next 7 days (business time zone).",
     {"type": "profile", "field": "birthday", "op": "anniversary_within_days", "value": 7}),
    ("Engaged but never bought", "Viewed products 3+ times in 30 days without any order.",
     {"all": [{"type": "event", "name": "Product Viewed", "op": "at_least", "count": 3, "window": {"last_days": 30}},
              {"type": "orders", "metric": "count", "op": "eq", "value": 0}]}),
]


def ready_segments() -> list[tuple[str, str, dict]]:
    rfm = [(f"RFM: {name}", f"Customers in the RFM segment “{name}”.",
            {"type": "score", "field": "rfm_segment", "op": "eq", "value": name}) for name in RFM_SEGMENTS]
    return READY + rfm


def install(session: Session, now: datetime | None = None, timezone: str = "Asia/Ho_Chi_Minh") -> list[Segment]:
    """Create the ready-made segments that do not exist yet (each evaluated at once); returns them."""
    existing = set(session.scalars(sa.select(Segment.name)))
    made = []
    for name, description, rules in ready_segments():
        if name not in existing:
            made.append(save_segment(session, name=name, rules=rules, description=description, now=now,
                                     timezone=timezone))
            session.commit()
    return made


def install_for_demo(session_factory, timezone: str, now: datetime | None = None) -> int:
    """Install the ready-made segments into a freshly built demo; the membership consumers then start at
    the head of the outbox and the events (install evaluated everyone already). Returns segments made."""
    from clm.db.engine import for_writing
    from clm.db.upsert import insert_for
    from clm.lib.clock import utcnow
    from clm.outbox.models import OutboxCursor, OutboxEvent
    from clm.segments.consumers import EventsConsumer, OutboxConsumer
    from clm.tracking.models import Event

    with session_factory() as session:
        for_writing(session)
        heads = {OutboxConsumer.name: session.scalar(sa.select(sa.func.max(OutboxEvent.id))) or 0,
                 EventsConsumer.name: session.scalar(sa.select(sa.func.max(Event.id))) or 0}
        made = install(session, now, timezone)
        for_writing(session)
        cursors = OutboxCursor.__table__
        for consumer, last in heads.items():
            stmt = insert_for(session, cursors).values(consumer=consumer, last_id=last, updated_at=utcnow())
            session.execute(stmt.on_conflict_do_update(index_elements=["consumer"],
                                                       set_={"last_id": last, "updated_at": utcnow()}))
        session.commit()
    return len(made)
