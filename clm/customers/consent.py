"""Consent records (Decree 13/2023/ND-CP): every decision is kept; the latest per channel and purpose rules.

A decision is never updated or deleted while the customer exists: withdrawing consent is a new record
with granted=false, so the history shows who agreed to what, when, where and on what evidence.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.customers.models import Consent
from clm.lib.clock import as_utc, utcnow
from clm.lib.errors import FieldError
from clm.outbox.service import emit


def record_consent(session: Session, customer_id: int, *, channel: str, purpose: str, granted: bool,
                   source: str, evidence: str | None = None, recorded_at: datetime | None = None) -> Consent:
    """Record one decision and announce it (`consent.changed`). `recorded_at` may be past, never future."""
    now = utcnow()
    when = now if recorded_at is None else as_utc(recorded_at)
    if when > now:
        raise FieldError("recorded_at", "is in the future; record a decision once it has been made")
    row = Consent(customer_id=customer_id, channel=channel, purpose=purpose, granted=granted,
                  source=source, evidence=evidence, recorded_at=when)
    session.add(row)
    session.flush()
    emit(session, "consent.changed", customer_id,
         {"consent_id": row.id, "channel": channel, "purpose": purpose, "granted": granted})
    return row


def consent_history(session: Session, customer_id: int) -> list[Consent]:
    """Every decision of the customer, newest first."""
    return list(session.scalars(
        sa.select(Consent).where(Consent.customer_id == customer_id)
        .order_by(Consent.recorded_at.desc(), Consent.id.desc())
    ))


def current_consents(session: Session, customer_id: int, history: list[Consent] | None = None) -> list[Consent]:
    """The decision in force for each (channel, purpose): the latest recorded one."""
    current: dict[tuple[str, str], Consent] = {}
    for row in history if history is not None else consent_history(session, customer_id):
        current.setdefault((row.channel, row.purpose), row)
    return sorted(current.values(), key=lambda c: (c.channel, c.purpose))


def has_consent(session: Session, customer_id: int, channel: str, purpose: str) -> bool:
    """Whether the customer's latest decision for `channel` and `purpose` grants it (none recorded: no)."""
    granted = session.scalar(
        sa.select(Consent.granted)
        .where(Consent.customer_id == customer_id, Consent.channel == channel, Consent.purpose == purpose)
        .order_by(Consent.recorded_at.desc(), Consent.id.desc()).limit(1)
    )
    return bool(granted)
