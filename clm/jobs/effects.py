"""Effects that happen once although jobs run at least once.

A handler that has an effect (a message sent, points granted, a row written) first records the
effect's idempotency key in the same transaction as the effect:

    if record_effect(session, f"welcome-email:{customer_id}", job.id):
        send(...)  # or write the rows of the effect

`record_effect` is False when the key was recorded before (by an earlier attempt that committed), so
a retried job skips what it already did. On PostgreSQL a concurrent attempt with the same key waits
for the first to commit or roll back, then sees the key or takes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.upsert import insert_for
from clm.jobs.models import JobEffect
from clm.lib.clock import utcnow

_effects = JobEffect.__table__


def record_effect(session: Session, key: str, job_id: int | None = None) -> bool:
    """Take `key` for an effect in this transaction; False when the effect already happened."""
    stmt = insert_for(session, _effects).values(key=key, job_id=job_id, created_at=utcnow())
    stmt = stmt.on_conflict_do_nothing(index_elements=["key"]).returning(_effects.c.key)
    return session.execute(stmt).scalar() is not None


def effect_done(session: Session, key: str) -> bool:
    return session.scalar(sa.select(sa.literal(True)).where(_effects.c.key == key)) is not None
