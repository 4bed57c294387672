"""The channels' tables: the message outbox and its status history, templates with versions, suppressions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow

CHANNELS = ("email", "sms", "zalo", "messenger", "webhook")
PURPOSES = ("transactional", "marketing")
LOCALES = ("vi", "en")

QUEUED, DEFERRED, SENDING, SENT, DELIVERED = "queued", "deferred", "sending", "sent", "delivered"
FAILED, BOUNCED, OPENED, CLICKED, REPLIED = "failed", "bounced", "opened", "clicked", "replied"
UNSUBSCRIBED, SUPPRESSED = "unsubscribed", "suppressed"
STATUSES = (QUEUED, DEFERRED, SENDING, SENT, DELIVERED, FAILED, BOUNCED, OPENED, CLICKED, REPLIED,
            UNSUBSCRIBED, SUPPRESSED)
WAITING = (QUEUED, DEFERRED)  # not yet handed to a provider
# Handed to the provider and accepted: what the frequency cap counts (with `sending`).
ACCEPTED = (SENT, DELIVERED, OPENED, CLICKED, REPLIED, UNSUBSCRIBED)

SUPPRESSION_REASONS = ("hard_bounce", "complaint", "unsubscribe", "manual")


class Message(Base):
    """One message to one customer on one channel: the row is the outbox the worker sends from.

    The content is rendered when the message is queued (what was sent is what is stored); the
    idempotency key is unique, so asking twice for the same message returns the first row."""

    __tablename__ = "messages"
    __table_args__ = (
        sa.Index("ix_messages_status_time", "status", "created_at"),
        # The frequency cap reads a customer's recent marketing sends; every other look-up by customer
        # (their latest messages, what is still queued for them) uses its leading column too.
        sa.Index("ix_messages_cap", "customer_id", "purpose", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(16))
    purpose: Mapped[str] = mapped_column(sa.String(16))
    template_key: Mapped[str] = mapped_column(sa.String(100))
    template_version: Mapped[int | None] = mapped_column(sa.Integer)
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    subject: Mapped[str | None] = mapped_column(sa.Text)
    text: Mapped[str] = mapped_column(sa.Text, default="")
    html: Mapped[str | None] = mapped_column(sa.Text)
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    address: Mapped[str | None] = mapped_column(sa.String(320))
    idempotency_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16), default=QUEUED)
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    deferred_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(sa.String(32))
    provider_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    broadcast_id: Mapped[int | None] = mapped_column(BigId, index=True)
    journey_id: Mapped[int | None] = mapped_column(BigId)
    journey_run_id: Mapped[int | None] = mapped_column(BigId, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # handed to the provider


class MessageEvent(Base):
    """One status a message went through, with why and the provider's detail."""

    __tablename__ = "message_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Template(Base):
    """A named template for one channel; its content lives in versions, the newest is the current one."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(100), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(255), default="")
    current_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TemplateVersion(Base):
    """The content of one version: `variants` per locale ({"vi": {"subject", "text", "html"}, "en": ...})
    and `provider` data (ZNS template id and its data mapping, a Messenger tag, a webhook URL).
    Versions are never edited: a change is a new version, so a message names exactly what it rendered."""

    __tablename__ = "template_versions"
    __table_args__ = (sa.UniqueConstraint("template_id", "version", name="uq_template_versions_template_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    template_id: Mapped[int] = mapped_column(sa.ForeignKey("templates.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(sa.Integer)
    variants: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    provider: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Suppression(Base):
    """An address that must not receive (marketing) messages on a channel, and why."""

    __tablename__ = "suppressions"
    __table_args__ = (sa.UniqueConstraint("channel", "address", "reason", name="uq_suppressions_channel_address_reason"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    address: Mapped[str] = mapped_column(sa.String(320))
    reason: Mapped[str] = mapped_column(sa.String(16))
    detail: Mapped[str | None] = mapped_column(sa.Text)
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    message_id: Mapped[int | None] = mapped_column(BigId)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


BROADCAST_STATUSES = ("draft", "scheduled", "sending", "sent", "cancelled")


class Broadcast(Base):
    """One template sent to a segment's members, now or at `send_at`; its messages carry its id.

    `draft` -> `scheduled` (a `broadcasts.send` job due at `send_at`) -> `sending` (recipients being
    queued, then their messages leaving the outbox) -> `sent` (nothing of it waits any more); a draft,
    scheduled or sending broadcast may be `cancelled`."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    channel: Mapped[str] = mapped_column(sa.String(16))
    template_key: Mapped[str] = mapped_column(sa.String(100))
    segment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("segments.id", ondelete="SET NULL"))
    purpose: Mapped[str] = mapped_column(sa.String(16), default="marketing")
    context: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    status_reason: Mapped[str | None] = mapped_column(sa.Text)
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it is (was) due
    attribution_days: Mapped[int] = mapped_column(sa.Integer, default=7)
    recipients: Mapped[int] = mapped_column(sa.Integer, default=0)  # messages queued for it
    job_id: Mapped[int | None] = mapped_column(BigId)  # the broadcasts.send job while scheduled
    created_by: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # queueing began
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # every recipient queued
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # sent or cancelled
