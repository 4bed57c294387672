"""Domain events, written in the same transaction as the facts they announce."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow


class OutboxEvent(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(sa.String(64), index=True)
    customer_id: Mapped[int | None] = mapped_column(BigId, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxCursor(Base):
    """How far each consumer has read the outbox. Consumers are idempotent, so at-least-once is fine."""

    __tablename__ = "outbox_cursors"

    consumer: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
