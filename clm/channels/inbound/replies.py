"""Customers' replies: a `Message Received` event on the timeline, and the message they answer.

The event goes through the tracking pipeline (``prepare`` then ``store``), so identity resolution,
rollups, segments and journeys see it like any tracked event. The provider's message id is the
event's ``messageId``: a webhook delivered twice stores once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.models import CLICKED, DELIVERED, OPENED, REPLIED, SENT, Message
from clm.channels.status import record_status
from clm.customers.identity import Key
from clm.lib.clock import utcnow
from clm.tracking.ingest import prepare, store
from clm.tracking.models import Event

EVENT = "Message Received"
# The identity kind a channel's sender id is, when it is not a phone number.
_KINDS = {"zalo": "zalo", "messenger": "facebook", "sms": "phone"}
_ANSWERABLE = (SENT, DELIVERED, OPENED, CLICKED)


@dataclass(frozen=True)
class Reply:
    """One inbound message from a customer, parsed from a provider's payload."""

    channel: str  # zalo | messenger | sms
    sender: str  # Zalo user id, Messenger PSID, or phone in E.164
    provider_message_id: str
    text: str = ""
    at: datetime | None = None
    provider: str = ""
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return Key(_KINDS[self.channel], self.sender)

    @property
    def message_id(self) -> str:
        """The event's messageId: unique per provider message, so redeliveries store once."""
        if self.provider in ("", self.channel):
            return f"{self.channel}:{self.provider_message_id}"
        return f"{self.channel}:{self.provider}:{self.provider_message_id}"


def record_replies(session: Session, replies: list[Reply], received_at: datetime | None = None) -> int:
    """Store the replies as events and mark the messages they answer; returns how many were new."""
    return len(record_replies_of(session, replies, received_at))


def record_replies_of(session: Session, replies: list[Reply], received_at: datetime | None = None) -> dict[str, int]:
    """`record_replies`, answering the customer of each new reply (by its message_id)."""
    if not replies:
        return {}
    received_at = received_at or utcnow()
    raws = [{
        "type": "track",
        "event": EVENT,
        "messageId": r.message_id,
        # The Segment spec wants an id; the customer is found by `keys` below, not by this.
        "anonymousId": r.message_id,
        "timestamp": (r.at or received_at).isoformat(),
        "properties": {"channel": r.channel, "text": r.text, "provider": r.provider or r.channel,
                       "provider_message_id": r.provider_message_id, "sender_id": r.sender, **r.properties},
        "context": {"channel": r.channel},
    } for r in replies]
    items, rejected = prepare(raws, received_at=received_at, max_event_bytes=0)
    if rejected:  # our own shape: a rejection here is a bug, not bad input
        raise ValueError(f"reply event rejected: {rejected[0].message}")
    by_id = {r.message_id: r for r in replies}
    for item in items:
        item.keys = [by_id[item.msg.messageId].key]
    fresh = store(session, items, source="channels")
    mark_replied_many(session, [(item.customer_id, by_id[item.msg.messageId].channel,
                                 by_id[item.msg.messageId].provider_message_id) for item in fresh], received_at)
    return {item.msg.messageId: item.customer_id for item in fresh}


def mark_replied_many(session: Session, replies: list[tuple[int, str, str]], at: datetime) -> None:
    """`mark_replied` for each (customer_id, channel, provider_message_id) in order, the latest messages of
    all of them read in one query. Only a customer's first reply on a channel can mark anything: after it,
    the latest message is `replied` and the next finds nothing to change."""
    firsts: dict[tuple[int, str], str] = {}
    for customer_id, channel, provider_message_id in replies:
        firsts.setdefault((customer_id, channel), provider_message_id)
    if not firsts:
        return
    rank = sa.func.row_number().over(partition_by=(Message.customer_id, Message.channel),
                                     order_by=(Message.sent_at.desc(), Message.id.desc()))
    ranked = (sa.select(Message.id, rank.label("n"))
              .where(sa.tuple_(Message.customer_id, Message.channel).in_(list(firsts)),
                     Message.sent_at.is_not(None), Message.sent_at <= at,
                     Message.status.in_((*_ANSWERABLE, REPLIED))).subquery())
    latest = {(m.customer_id, m.channel): m for m in session.scalars(
        sa.select(Message).where(Message.id.in_(sa.select(ranked.c.id).where(ranked.c.n == 1))))}
    for key, provider_message_id in firsts.items():
        message = latest.get(key)
        if message is not None and message.status != REPLIED:
            record_status(session, message, REPLIED, reason="the customer replied",
                          detail={"provider_message_id": provider_message_id}, at=at)


def mark_replied(session: Session, customer_id: int, channel: str, at: datetime, provider_message_id: str) -> bool:
    """The latest message sent to the customer on the channel before `at` (clm's clock) becomes `replied`.

    A message that failed or bounced never arrived, so it is not the one being answered; if the
    latest is already `replied`, nothing older changes."""
    message = session.scalar(
        sa.select(Message)
        .where(Message.customer_id == customer_id, Message.channel == channel, Message.sent_at.is_not(None),
               Message.sent_at <= at, Message.status.in_((*_ANSWERABLE, REPLIED)))
        .order_by(Message.sent_at.desc(), Message.id.desc()).limit(1))
    if message is None or message.status == REPLIED:
        return False
    return record_status(session, message, REPLIED, reason="the customer replied",
                         detail={"provider_message_id": provider_message_id}, at=at)


def last_inbound_at(session: Session, customer_id: int, channel: str) -> datetime | None:
    """When the customer last wrote on `channel` (Messenger's 24-hour window starts there)."""
    prefix = f"{channel}:"
    return session.scalar(
        sa.select(Event.timestamp)
        .where(Event.customer_id == customer_id, Event.name == EVENT, Event.message_id.startswith(prefix))
        .order_by(Event.timestamp.desc()).limit(1))
