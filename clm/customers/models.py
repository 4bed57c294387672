"""Customer profiles, their identities, merges and consents."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow

IDENTITY_KINDS = ("user_id", "anonymous_id", "email", "phone", "zalo", "facebook")


def _when_set(column: str, name: str) -> sa.Index:
    """An index over the rows where `column` is set. New customers arrive without email, phone, city or
    merge (anonymous visitors, most of them), so they cost these indexes nothing; `column = value` and
    `column IN (...)` still use them (both databases prove such a condition implies NOT NULL)."""
    condition = sa.text(f"{column} IS NOT NULL")
    return sa.Index(name, column, sqlite_where=condition, postgresql_where=condition)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        _when_set("email", "ix_customers_email"),
        _when_set("phone", "ix_customers_phone"),
        _when_set("city", "ix_customers_city"),
        _when_set("merged_into_id", "ix_customers_merged_into_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    full_name: Mapped[str | None] = mapped_column(sa.String(255))
    given_name: Mapped[str | None] = mapped_column(sa.String(255))
    family_name: Mapped[str | None] = mapped_column(sa.String(255))
    birthday: Mapped[date | None] = mapped_column(sa.Date)
    gender: Mapped[str | None] = mapped_column(sa.String(16))
    city: Mapped[str | None] = mapped_column(sa.String(128))
    traits: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    lifecycle_stage: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    # Folded name, email and phone: what diacritics-insensitive search matches against.
    search_text: Mapped[str] = mapped_column(sa.Text, default="")
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    merged_into_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Identity(Base):
    """One way of recognising a customer: (kind, value) is unique across the whole database."""

    __tablename__ = "identities"
    __table_args__ = (sa.UniqueConstraint("kind", "value", name="uq_identities_kind_value"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[str] = mapped_column(sa.String(320))
    verified: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CustomerMerge(Base):
    """A record that `loser` was folded into `winner`, with what moved."""

    __tablename__ = "customer_merges"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    winner_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    loser_id: Mapped[int] = mapped_column(BigId, index=True)
    reason: Mapped[str] = mapped_column(sa.String(64))
    moved: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(Base):
    """One consent decision; the latest per (customer, channel, purpose) is the one in force."""

    __tablename__ = "consents"
    __table_args__ = (sa.Index("ix_consents_lookup", "customer_id", "channel", "purpose", "recorded_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(sa.String(32))
    purpose: Mapped[str] = mapped_column(sa.String(64))
    granted: Mapped[bool] = mapped_column(sa.Boolean)
    source: Mapped[str] = mapped_column(sa.String(128))
    evidence: Mapped[str | None] = mapped_column(sa.Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
