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
    def merge_customers(cls, session, pairs: list[tuple[int, int]]) -> dict[int, int]:
        """Add each loser's daily counts to its winner's (the same day may exist on both)."""
        from clm.db.bulk import insert_rows

        table = cls.__table__
        winner_of = {loser: winner for winner, loser in pairs}
        rows = session.execute(
            sa.select(table.c.customer_id, table.c.name, table.c.day, table.c.count)
            .where(table.c.customer_id.in_(list(winner_of)))
        ).all()
        if not rows:
            return {}
        insert_rows(session, table, ("customer_id", "name", "day", "count"),
                    [(winner_of[c], n, d, k) for c, n, d, k in rows],
                    on_conflict="ON CONFLICT (customer_id, name, day) DO UPDATE "
                                "SET count = event_daily.count + excluded.count")
        session.execute(sa.delete(table).where(table.c.customer_id.in_(list(winner_of))))
        counts: dict[int, int] = {}
        for c, *_ in rows:
            counts[c] = counts.get(c, 0) + 1
        return counts
