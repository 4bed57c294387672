"""The audit of tickets: every change as a row (who, what, from, to, when, why)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.service.models import Change, Ticket


def record(session: Session, ticket: Ticket, field: str, old: Any, new: Any, *, at: datetime,
           user_id: int | None = None, actor: str = "user", reason: str | None = None) -> Change:
    change = Change(ticket_id=ticket.id, customer_id=ticket.customer_id, user_id=user_id, actor=actor, field=field,
                    values={"old": old, "new": new}, reason=reason[:500] if reason else None, at=at)
    session.add(change)
    return change


def history(session: Session, ticket_id: int, field: str | None = None) -> list[Change]:
    """The ticket's changes, oldest first (one field's, when named: "status" is the status history)."""
    query = sa.select(Change).where(Change.ticket_id == ticket_id)
    if field is not None:
        query = query.where(Change.field == field)
    return list(session.scalars(query.order_by(Change.at, Change.id)))
