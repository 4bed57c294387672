"""What staff do to the program from the dashboard, each change recorded in `loyalty_audit` in the same
transaction: manual adjustments (a reason is required; the user is the entry's source), and changes to
settings, rules, tiers and rewards (the values given)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.service import get_customer
from clm.loyalty import ledger, tiers
from clm.loyalty.models import Audit, Entry
from clm.loyalty.program import require_program

MAX_ADJUSTMENT = 10_000_000


def record(session: Session, user, action: str, *, target: str | None = None, reason: str | None = None,
           details: dict[str, Any] | None = None, now: datetime) -> Audit:
    row = Audit(user_id=user.id, user_email=user.email, action=action, target=target, reason=reason,
                details=details or {}, created_at=now)
    session.add(row)
    session.flush()
    return row


def adjust(session: Session, user, customer_id: int, *, points: int, reason: str, key: str, now: datetime,
           qualifying: bool = False) -> tuple[Entry, bool]:
    """A manual adjustment by `user` (idempotent per `key`: a form posted twice changes the balance once).
    Refused with LedgerError (naming the field) when there is no reason, no change, or not enough points."""
    from clm.loyalty.ledger import LedgerError

    get_customer(session, customer_id)
    reason = (reason or "").strip()
    if abs(points) > MAX_ADJUSTMENT:
        raise LedgerError(f"an adjustment is at most {MAX_ADJUSTMENT:,} points either way", "invalid", "points", 422)
    program = require_program(session)
    member = ledger.lock_member(session, customer_id, now)
    ledger.settle(session, member, program, now)
    entry, applied = ledger.adjust(session, member, program, key=f"staff:{customer_id}:{key}", points=points,
                                   reason=reason, staff=f"user:{user.id}", now=now, qualifying=qualifying)
    if applied:
        if qualifying:
            tiers.evaluate(session, program, member, now)
        record(session, user, "adjust", target=f"customer:{customer_id}", reason=reason,
               details={"points": points, "qualifying": qualifying, "entry_id": entry.id}, now=now)
    return entry, applied


def recent(session: Session, limit: int = 50, target: str | None = None) -> list[Audit]:
    query = sa.select(Audit).order_by(Audit.id.desc()).limit(limit)
    if target is not None:
        query = query.where(Audit.target == target)
    return list(session.scalars(query))
