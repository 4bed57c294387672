"""Segments and their membership history (one row per stay: entered_at, exited_at)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow


class Segment(Base):
    """A named set of customers: `dynamic` (a rule tree, kept current) or `static` (a list)."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[str] = mapped_column(sa.String(16))  # dynamic | static
    rules: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # The facts the tree reads ("profile", "orders", "event:<name>", "time"...), to re-check only the
    # segments an arriving fact can change.
    depends_on: Mapped[list[str]] = mapped_column(Json, default=list)
    size: Mapped[int] = mapped_column(sa.Integer, default=0)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SegmentMember(Base):
    """One stay of a customer in a segment; the current one has exited_at NULL (at most one, enforced)."""

    __tablename__ = "segment_members"
    __table_args__ = (
        sa.Index("ix_segment_members_current", "segment_id", "exited_at", "customer_id"),
        sa.Index("uq_segment_members_one_current", "segment_id", "customer_id", unique=True,
                 sqlite_where=sa.text("exited_at IS NULL"), postgresql_where=sa.text("exited_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segments.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    exited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @classmethod
    def merge_customers(cls, session, pairs: list[tuple[int, int]]) -> dict[int, int]:
        """Dynamic stays remain on the loser (the merge's re-check ends them and lets the winner in by the
        rules); the loser's places on static lists pass to the winner. Returns moved rows per loser."""
        table, segments = cls.__table__, Segment.__table__
        moved: dict[int, int] = {}
        for winner, loser in pairs:
            lists = sa.select(segments.c.id).where(segments.c.kind == "static")
            held = sa.select(table.c.segment_id).where(table.c.customer_id == winner, table.c.exited_at.is_(None))
            result = session.execute(
                sa.update(table).where(table.c.customer_id == loser, table.c.exited_at.is_(None),
                                       table.c.segment_id.in_(lists), table.c.segment_id.not_in(held))
                .values(customer_id=winner))
            moved[loser] = result.rowcount or 0
        return moved


class SegmentSize(Base):
    """A segment's member count as of one day (business time zone), written by the segments sweep; the
    segment page's size-over-time chart reads it in one query."""

    __tablename__ = "segment_sizes"

    segment_id: Mapped[int] = mapped_column(sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    members: Mapped[int] = mapped_column(sa.Integer)
