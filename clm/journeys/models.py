"""Journeys, their versions, each customer's run through one, and the steps that run passed.

A run is the state machine of one customer in one journey version: `node_id` is where the customer
is, `seq` counts arrivals (the `journey.step` job that may act on the run carries the same `seq`, so a
stale job, e.g. a wait's timeout after the awaited event came, finds a different number and does
nothing). Reporting counts come straight from these tables: runs by (journey, node, status) and
steps by (journey, node).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow

DRAFT, ACTIVE, PAUSED, ARCHIVED = "draft", "active", "paused", "archived"
JOURNEY_STATES = (DRAFT, ACTIVE, PAUSED, ARCHIVED)

# Run statuses. `active`: a step is due now; `waiting`: a wait's step is due later (or an event is
# awaited); `held`: its step came due while the journey was paused; `parked`: a step failed every
# attempt (its error is kept; retrying the dead job resumes it). The rest are final.
RUN_ACTIVE, WAITING, HELD, PARKED = "active", "waiting", "held", "parked"
COMPLETED, EXITED, CONVERTED = "completed", "exited", "converted"
OPEN = (RUN_ACTIVE, WAITING, HELD, PARKED)
FINAL = (COMPLETED, EXITED, CONVERTED)
_OPEN_SQL = sa.text("ended_at IS NULL")


class Journey(Base):
    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    state: Mapped[str] = mapped_column(sa.String(16), default=DRAFT)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)  # the current version's number
    # The current version's trigger type, so consumers read only the journeys a fact can start.
    trigger_type: Mapped[str] = mapped_column(sa.String(32), index=True)
    swept_on: Mapped[date | None] = mapped_column(sa.Date)  # the daily date-trigger sweep's last day
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JourneyVersion(Base):
    """A journey's graph. Once published (activated) a version never changes: editing makes the next one."""

    __tablename__ = "journey_versions"
    __table_args__ = (sa.UniqueConstraint("journey_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(sa.Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(Json)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JourneyRun(Base):
    __tablename__ = "journey_runs"
    __table_args__ = (
        # A customer enters once per cause (an event id, an outbox row, a day): replays enter nobody twice.
        sa.UniqueConstraint("journey_id", "customer_id", "entry_key"),
        # A customer is in a journey at most once at a time.
        sa.Index("uq_journey_runs_open", "journey_id", "customer_id", unique=True,
                 sqlite_where=_OPEN_SQL, postgresql_where=_OPEN_SQL),
        sa.Index("ix_journey_runs_position", "journey_id", "status", "node_id"),
        sa.Index("ix_journey_runs_customer", "customer_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("journey_versions.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(sa.String(16))
    node_id: Mapped[str] = mapped_column(sa.String(64))
    seq: Mapped[int] = mapped_column(sa.Integer, default=0)
    entry_key: Mapped[str] = mapped_column(sa.String(255))
    context: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)  # the trigger's payload
    variant: Mapped[str | None] = mapped_column(sa.String(64))  # the random split's branch ("control"...)
    wait_event: Mapped[str | None] = mapped_column(sa.String(255))  # awaited event name
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the pending step is due
    goal_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # end of the goal window
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exit_reason: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @classmethod
    def merge_customers(cls, session, pairs: list[tuple[int, int]]) -> dict[int, int]:
        """The loser's runs pass to the winner; an open one in a journey the winner is in already ends."""
        table = cls.__table__
        moved: dict[int, int] = {}
        now = utcnow()
        for winner, loser in pairs:
            theirs = sa.select(table.c.journey_id).where(table.c.customer_id == winner, table.c.ended_at.is_(None))
            session.execute(sa.update(table).where(
                table.c.customer_id == loser, table.c.ended_at.is_(None), table.c.journey_id.in_(theirs))
                .values(status=EXITED, ended_at=now, exit_reason="merged", updated_at=now))
            moved[loser] = session.execute(sa.update(table).where(table.c.customer_id == loser)
                                           .values(customer_id=winner)).rowcount or 0
        return moved


class JourneyStep(Base):
    """One node a run passed (one row per arrival: unique by run and seq)."""

    __tablename__ = "journey_steps"
    __table_args__ = (sa.UniqueConstraint("run_id", "seq"),
                      sa.Index("ix_journey_steps_node", "journey_id", "node_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("journey_runs.id", ondelete="CASCADE"))
    journey_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[str] = mapped_column(sa.String(64))
    seq: Mapped[int] = mapped_column(sa.Integer)
    outcome: Mapped[str] = mapped_column(sa.String(64))  # "passed", a branch ("yes", "timeout", "A"), "sent"
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
