"""The mail path's tables: attachments kept with their messages, and mail held back with the reason.

Attachments live in the database, in the same transaction as their message: accepted mail is durable
with everything it carried before the sending server hears "250 OK". Their size is capped
(CLM_MAIL_MAX_ATTACHMENT_BYTES); their names are reduced to a safe base name and never used as paths.

The quarantine keeps every mail that did not become a customer's message, whole (the raw bytes), with
why: malformed mail (broken MIME, an unknown charset, no sender, an attachment over the limit) and
machine mail (auto-replies, bulk mail, delivery reports, a null return path), so nothing accepted is
ever lost and a person can release a mail once its problem is understood.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, UTCDateTime
from clm.lib.clock import utcnow

KINDS = ("malformed", "automatic")


class Attachment(Base):
    __tablename__ = "service_attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("service_messages.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(127))
    size: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Quarantined(Base):
    """A mail that did not become a message, whole, with why. `sha256` of the bytes is unique: the same mail
    delivered again (an SMTP retry, an IMAP message fetched twice) is kept once."""

    __tablename__ = "service_mail_quarantine"
    __table_args__ = (sa.Index("ix_service_mail_quarantine_time", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # malformed | automatic
    reason: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(16))  # smtp | imap | api | cli
    envelope_from: Mapped[str | None] = mapped_column(sa.String(320))
    envelope_to: Mapped[str | None] = mapped_column(sa.String(320))
    sender: Mapped[str | None] = mapped_column(sa.String(320))
    subject: Mapped[str | None] = mapped_column(sa.String(255))
    message_id_header: Mapped[str | None] = mapped_column(sa.String(255))
    size: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    raw: Mapped[bytes] = mapped_column(sa.LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_tickets.id", ondelete="SET NULL"))
