"""Per-customer facts the stage rules read, and the history of every stage move."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, UTCDateTime
from clm.lib.clock import utcnow


class CustomerStats(Base):
    """What the rules need to know about a customer, kept up to date from the outbox and the event log.

    Every column is recomputable from the facts (orders, events): the consumers recompute a customer's
    row rather than increment it, so handling the same fact twice changes nothing.
    """

    __tablename__ = "customer_stats"

    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    orders_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    revenue: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    refunded_orders: Mapped[int] = mapped_column(sa.Integer, default=0)
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The median of the days between consecutive orders; NULL below two orders.
    median_gap_days: Mapped[float | None] = mapped_column(sa.Float, index=True)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def merge_customer(cls, session, winner_id: int, loser_id: int) -> int:
        """Fold the loser's row into the winner's. Counts add up; the gap is recomputed from the orders
        when the lifecycle consumer handles the merge's `customer.merged` event."""
        loser = session.get(cls, loser_id)
        if loser is None:
            return 0
        winner = session.get(cls, winner_id)
        if winner is None:
            session.add(cls(customer_id=winner_id, orders_count=loser.orders_count, revenue=loser.revenue,
                            refunded_orders=loser.refunded_orders, first_order_at=loser.first_order_at,
                            last_order_at=loser.last_order_at, median_gap_days=loser.median_gap_days,
                            last_event_at=loser.last_event_at, updated_at=utcnow()))
        else:
            winner.orders_count += loser.orders_count
            winner.revenue += loser.revenue
            winner.refunded_orders += loser.refunded_orders
            for attr, pick in (("first_order_at", min), ("last_order_at", max), ("last_event_at", max)):
                values = [v for v in (getattr(winner, attr), getattr(loser, attr)) if v is not None]
                setattr(winner, attr, pick(values) if values else None)
            winner.updated_at = utcnow()
        session.delete(loser)
        session.flush()
        return 1


class StageHistory(Base):
    """One move of one customer from a stage to another, with the rule that moved them.

    `changed_at` is when the move happened by the facts (the order that made a customer a buyer, the
    day their usual gap ran out), not when a worker noticed.
    """

    __tablename__ = "stage_history"
    __table_args__ = (sa.Index("ix_stage_history_customer_time", "customer_id", "changed_at"),
                      sa.Index("ix_stage_history_to_time", "to_stage", "changed_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    from_stage: Mapped[str | None] = mapped_column(sa.String(32))
    to_stage: Mapped[str] = mapped_column(sa.String(32))
    rule: Mapped[str] = mapped_column(sa.String(64))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def merge_customer(cls, session, winner_id: int, loser_id: int) -> int:
        """The loser's history stays on the loser (a tombstone): two people's moves do not interleave."""
        return 0
