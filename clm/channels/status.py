"""A message's status and its history: every change is a `message_events` row with why.

Sending sets statuses outright (queued -> sending -> sent, or back to queued after a transient error).
Reports that arrive later (delivery reports, opens, clicks, replies, unsubscribes) only move a message
forward: a late "delivered" never hides an "opened", and an open after a click keeps "clicked". Each
report is kept in the history either way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.models import STATUSES, Message, MessageEvent
from clm.lib.clock import utcnow

RANK = {"queued": 0, "deferred": 0, "sending": 1, "sent": 2, "delivered": 3, "failed": 3, "bounced": 3,
        "suppressed": 3, "opened": 4, "clicked": 5, "replied": 6, "unsubscribed": 7}


def record_status(session: Session, message: Message, status: str, *, reason: str | None = None,
                  detail: dict[str, Any] | None = None, at: datetime | None = None, force: bool = False) -> bool:
    """Record `status` in the message's history; the message takes it when `force` or when it is a step
    forward. Returns whether the message's status changed."""
    if status not in STATUSES:
        raise ValueError(f"unknown message status {status!r}")
    at = at or utcnow()
    session.add(MessageEvent(message_id=message.id, status=status, reason=reason, detail=detail or {}, at=at))
    if not force and RANK[status] <= RANK.get(message.status, 0):
        session.flush()
        return False
    message.status = status
    message.status_reason = reason
    message.updated_at = at
    session.flush()
    return True


def find_by_provider_id(session: Session, provider_id: str, provider: str | None = None) -> Message | None:
    """The message a provider's delivery report or reply is about."""
    query = sa.select(Message).where(Message.provider_id == provider_id)
    if provider:
        query = query.where(Message.provider == provider)
    return session.scalar(query.order_by(Message.id.desc()).limit(1))


def history(session: Session, message_id: int) -> list[MessageEvent]:
    return list(session.scalars(sa.select(MessageEvent).where(MessageEvent.message_id == message_id)
                                .order_by(MessageEvent.at, MessageEvent.id)))
