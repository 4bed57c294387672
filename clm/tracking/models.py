"""Tracked events and their daily rollups."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime


class Event(Base):
    """One Segment call (track, page, screen, identify, group, alias) as it was accepted."""

    __tablename__ = "events"
    __table_args__ = (sa.Index("ix_events_customer_time", "customer_id", "timestamp"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    properties: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(sa.String(32), default="api")


class EventDaily(Base):
    """Events per customer, name and UTC day, so that segments never scan raw events."""

    __tablename__ = "event_daily"

    customer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    count: Mapped[int] = mapped_column(sa.Integer, default=0)

    @classmethod
    def merge_customer(cls, session, winner_id: int, loser_id: int) -> int:
        """Add the loser's daily counts to the winner's (the same day may exist on both)."""
        rows = session.execute(
            sa.select(cls.name, cls.day, cls.count).where(cls.customer_id == loser_id)
        ).all()
        if not rows:
            return 0
        from clm.db.upsert import insert_for

        stmt = insert_for(session, cls)
        stmt = stmt.on_conflict_do_update(
            index_elements=["customer_id", "name", "day"], set_={"count": cls.count + stmt.excluded.count}
        )
        session.execute(stmt, [{"customer_id": winner_id, "name": n, "day": d, "count": c} for n, d, c in rows])
        session.execute(sa.delete(cls).where(cls.customer_id == loser_id))
        return len(rows)
