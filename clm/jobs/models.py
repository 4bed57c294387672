"""The job queue's tables: jobs (the queue of record) and job_effects (effects that happened once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from clm.db.base import Base, BigId, Json, UTCDateTime
from clm.lib.clock import utcnow

AVAILABLE, RUNNING, COMPLETED, RETRYABLE, DEAD, CANCELLED = (
    "available", "running", "completed", "retryable", "dead", "cancelled")
STATES = (AVAILABLE, RUNNING, COMPLETED, RETRYABLE, DEAD, CANCELLED)
WAITING = (AVAILABLE, RETRYABLE)  # may be claimed once due
UNFINISHED = (AVAILABLE, RUNNING, RETRYABLE)  # a unique key is taken while a job is in one of these

_UNFINISHED_SQL = sa.text("state IN ('available', 'running', 'retryable')")
_WAITING_SQL = sa.text("state IN ('available', 'retryable')")
_RUNNING_SQL = sa.text("state = 'running'")


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(64))
    args: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    queue: Mapped[str] = mapped_column(sa.String(32), default="default")
    priority: Mapped[int] = mapped_column(sa.SmallInteger, default=0)  # lower runs first
    state: Mapped[str] = mapped_column(sa.String(16), default=AVAILABLE)
    attempt: Mapped[int] = mapped_column(sa.Integer, default=0)  # claims so far
    max_attempts: Mapped[int] = mapped_column(sa.Integer, default=20)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # due time
    attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # also when it died or was cancelled
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(sa.String(128))
    errors: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    unique_key: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # What claim reads: due waiting jobs of a queue in priority order.
        sa.Index("ix_jobs_due", "queue", "priority", "scheduled_at", "id",
                 sqlite_where=_WAITING_SQL, postgresql_where=_WAITING_SQL),
        # What the rescue reads: running jobs whose worker stopped renewing its lease.
        sa.Index("ix_jobs_lease", "lease_expires_at", sqlite_where=_RUNNING_SQL, postgresql_where=_RUNNING_SQL),
        sa.Index("ix_jobs_state", "state", "id"),
        sa.Index("uq_jobs_unique_key", "unique_key", unique=True,
                 sqlite_where=_UNFINISHED_SQL, postgresql_where=_UNFINISHED_SQL),
    )


class JobEffect(Base):
    """An effect that happened, by its idempotency key; written in the transaction of the effect."""

    __tablename__ = "job_effects"

    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    job_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
