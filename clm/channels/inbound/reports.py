"""Delivery reports: the provider's word that a message reached the phone (or did not).

A report names the message by the provider's id (``messages.provider_id``); eSMS and Zalo also hand
back the id clm sent (RequestId, tracking_id), which finds a message whose send answer was lost.
Reports only move a message forward (clm.channels.status), so a late or repeated report is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.channels.models import DELIVERED, FAILED, OPENED, SENT, Message
from clm.channels.status import record_status
from clm.customers.models import Identity


@dataclass(frozen=True)
class Report:
    """One delivery report, parsed from a provider's payload."""

    channel: str
    provider_id: str | None
    status: str  # delivered | failed
    reason: str | None = None
    at: datetime | None = None
    sent_key: str | None = None  # the id clm sent with the message (eSMS RequestId, ZNS tracking_id)
    detail: dict[str, Any] = field(default_factory=dict)


def find_message(session: Session, channel: str, provider_id: str | None, sent_key: str | None = None) -> Message | None:
    """The message a report is about: by the provider's id, else by the key clm sent."""
    if provider_id:
        found = session.scalar(sa.select(Message).where(Message.provider_id == provider_id, Message.channel == channel)
                               .order_by(Message.id.desc()).limit(1))
        if found is not None:
            return found
    if sent_key:
        return session.scalar(sa.select(Message).where(Message.idempotency_key == sent_key,
                                                       Message.channel == channel))
    return None


def apply_report(session: Session, report: Report) -> bool | None:
    """Record the report on its message. None when no message matches; else whether the status moved."""
    if report.status not in (DELIVERED, FAILED):
        raise ValueError(f"a delivery report is delivered or failed, not {report.status!r}")
    message = find_message(session, report.channel, report.provider_id, report.sent_key)
    if message is None:
        return None
    if message.provider_id is None and report.provider_id:
        message.provider_id = report.provider_id
    return record_status(session, message, report.status, reason=report.reason,
                         detail={"source": "delivery report", **report.detail}, at=report.at)


@dataclass(frozen=True)
class Read:
    """The customer has read messages on ``channel``: everything sent up to ``at`` (Messenger's read
    watermark), or exactly the messages whose provider ids are ``provider_ids`` (Zalo's
    ``user_seen_message``, which lists them)."""

    channel: str
    kind: str  # identity kind of `sender`: facebook, zalo
    sender: str
    at: datetime
    provider_ids: tuple[str, ...] = ()


SEEN_EVENT = "Message Seen"  # on the customer's timeline, once per message a provider reports read


def apply_read(session: Session, read: Read) -> int:
    """Messages to that customer sent up to the watermark and not yet opened become `opened`; for a read
    naming its messages, those messages (found by provider id, whoever they were sent to: a ZNS goes to a
    phone, not to the Zalo user id) become `opened` and each gets a `Message Seen` event on its customer's
    timeline. Returns how many messages moved."""
    if read.provider_ids:
        return _apply_seen(session, read)
    customer_id = session.scalar(sa.select(Identity.customer_id).where(Identity.kind == read.kind,
                                                                       Identity.value == read.sender))
    if customer_id is None:
        return 0
    messages = session.scalars(
        sa.select(Message).where(Message.customer_id == customer_id, Message.channel == read.channel,
                                 Message.sent_at.is_not(None), Message.sent_at <= read.at,
                                 Message.status.in_((SENT, DELIVERED))))
    return sum(bool(record_status(session, m, OPENED, reason="read on " + read.channel,
                                  detail={"source": "read receipt"}, at=read.at)) for m in list(messages))


def _apply_seen(session: Session, read: Read) -> int:
    from clm.channels.timeline import record_customer_event

    messages = session.scalars(sa.select(Message).where(
        Message.channel == read.channel, Message.provider_id.in_(sorted(set(read.provider_ids))))
        .order_by(Message.id))
    moved = 0
    for message in list(messages):
        properties = {"message_id": message.id, "channel": message.channel, "template": message.template_key,
                      "provider_message_id": message.provider_id, "viewer_id": read.sender}
        if message.broadcast_id is not None:
            properties["broadcast_id"] = message.broadcast_id
        if message.journey_id is not None:
            properties["journey_id"] = message.journey_id
        if not record_customer_event(session, message.customer_id, SEEN_EVENT, properties,
                                     key=f"clm:message:{message.id}:seen", at=read.at):
            continue  # a redelivered event: recorded already
        moved += bool(record_status(session, message, OPENED, reason="read on " + read.channel,
                                    detail={"source": "seen event", "viewer_id": read.sender}, at=read.at))
    return moved
