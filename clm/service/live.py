"""Live updates for the workspace, read from the database so that every server process sees every change.

The service desk's domain events (`service.*` in the outbox, written in the transaction of the change) are
the feed: a page holds a `Feed` (one per open connection), which reads the events after the last id it
sent. On PostgreSQL an id is taken when a row is written, not when it commits, so a later id may be seen
before an earlier one commits; each read therefore looks back over the last `grace` seconds too and sends
what it has not sent yet (the same reasoning as clm.worker.tail).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.lib.clock import utcnow
from clm.outbox.models import OutboxEvent

TOPICS = ("service.ticket_opened", "service.ticket_assigned", "service.ticket_status_changed",
          "service.message_received", "service.reply", "service.mentioned", "service.sla_warning",
          "service.sla_breached", "service.ticket_updated", "service.note_added")
_outbox = OutboxEvent.__table__


@dataclass(frozen=True)
class Update:
    id: int
    topic: str
    ticket_id: int | None
    payload: dict[str, Any]


def head(session: Session) -> int:
    """The outbox's last id now: where a new page starts listening."""
    return session.scalar(sa.select(sa.func.max(_outbox.c.id))) or 0


@dataclass
class Feed:
    """The service events after `last`, each given once to this reader."""

    last: int
    grace: timedelta = timedelta(seconds=30)
    lookback: int = 5_000
    sent: set[int] = field(default_factory=set)

    def read(self, session: Session, now: datetime | None = None, limit: int = 500) -> list[Update]:
        horizon = (now or utcnow()) - self.grace
        where = _outbox.c.topic.in_(TOPICS)
        late = sa.and_(_outbox.c.id > self.last - self.lookback, _outbox.c.id <= self.last,
                       _outbox.c.created_at >= horizon)
        rows = session.execute(
            sa.select(_outbox.c.id, _outbox.c.topic, _outbox.c.payload)
            .where(where, sa.or_(_outbox.c.id > self.last, late)).order_by(_outbox.c.id).limit(limit)).all()
        out = []
        for row in rows:
            if row.id in self.sent:
                continue
            payload = row.payload or {}
            ticket_id = payload.get("ticket_id")
            out.append(Update(row.id, row.topic, ticket_id if isinstance(ticket_id, int) else None, payload))
            self.sent.add(row.id)
        if out:
            self.last = max(self.last, max(u.id for u in out))
        if len(self.sent) > 2 * self.lookback:
            floor = self.last - self.lookback
            self.sent = {i for i in self.sent if i > floor}
        return out
