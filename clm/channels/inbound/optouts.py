"""Opt-outs a provider tells clm about: a customer who unfollows (blocks) the shop's Zalo OA.

Unfollowing says "stop writing to me" as plainly as an unsubscribe link: clm records the withdrawal of
Zalo marketing consent (source "unfollowed the Zalo OA"), puts the customer's phone (the address ZNS
sends to) on the suppression list with reason ``unsubscribe``, suppresses their Zalo marketing still
queued and writes ``Zalo OA Unfollowed`` on their timeline. As with every unsubscribe, transactional
ZNS (an order's delivery update) still goes: Zalo delivers ZNS by phone number to followers and
non-followers alike. Following again grants nothing: consent is given, never inferred.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.guardrails import normalize_address
from clm.channels.models import Suppression
from clm.channels.sending import suppress_address
from clm.channels.timeline import record_customer_event
from clm.channels.tracking import _marketing_granted, stop_queued
from clm.customers.consent import record_consent
from clm.customers.models import Customer, Identity
from clm.lib.clock import utcnow

EVENT = "Zalo OA Unfollowed"
SOURCE = "unfollowed the Zalo OA"
REASON = "the customer unfollowed the Zalo OA"


@dataclass(frozen=True)
class OptOut:
    """One opt-out event: the channel, who (an identity kind and value) and when."""

    channel: str  # zalo
    kind: str  # the identity kind of `sender`: zalo
    sender: str
    event_id: str  # unique per provider event, so a redelivery is recorded once
    at: datetime | None = None


def _customer_of(session: Session, kind: str, value: str) -> Customer | None:
    customer_id = session.scalar(sa.select(Identity.customer_id).where(Identity.kind == kind, Identity.value == value)
                                 .order_by(Identity.id.desc()).limit(1))
    customer = session.get(Customer, customer_id) if customer_id is not None else None
    seen = set()
    while customer is not None and customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def record_optout(session: Session, optout: OptOut) -> bool | None:
    """Apply an opt-out in the caller's transaction. None when the sender is nobody clm knows; else
    whether anything changed (False for a redelivery)."""
    customer = _customer_of(session, optout.kind, optout.sender)
    if customer is None:
        return None
    at = optout.at or utcnow()
    changed = False
    address = normalize_address(optout.channel, customer.phone)
    if address and session.scalar(sa.select(Suppression.id).where(
            Suppression.channel == optout.channel, Suppression.address == address,
            Suppression.reason == "unsubscribe")) is None:
        suppress_address(session, optout.channel, address, "unsubscribe", detail=SOURCE, customer_id=customer.id,
                         at=at)
        changed = True
    if _marketing_granted(session, customer.id, optout.channel) is not False:
        record_consent(session, customer.id, channel=optout.channel, purpose="marketing", granted=False,
                       source=SOURCE, evidence=f"{optout.kind}:{optout.sender}", recorded_at=utcnow())
        # recorded when clm learns it: a provider's older event time would sort behind a grant made since
        changed = True
    changed |= record_customer_event(session, customer.id, EVENT,
                                     {"channel": optout.channel, "sender_id": optout.sender},
                                     key=f"{optout.channel}:{optout.event_id}", at=at)
    changed |= bool(stop_queued(session, customer.id, optout.channel, REASON))
    session.flush()
    return changed
