"""The queue's operations: enqueue, claim, complete, fail, cancel, retry. Plain functions on a session.

A claimed job is leased to one worker until `lease_expires_at`; a worker that dies stops renewing it
and `rescue_expired` hands the job to another worker. Execution is therefore at-least-once; effects
happen once when handlers record them with an idempotency key (clm.jobs.effects). Each state change of
a running job checks that the caller still holds it (same worker, same attempt), so a worker whose lease
was taken over cannot complete or fail the job under its new owner.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.jobs.models import (
    _UNFINISHED_SQL,
    AVAILABLE,
    CANCELLED,
    COMPLETED,
    DEAD,
    RETRYABLE,
    RUNNING,
    UNFINISHED,
    WAITING,
    Job,
)
from clm.lib.clock import utcnow
from clm.lib.errors import FieldError, NotFound

jobs = Job.__table__

BACKOFF_BASE = 15.0  # seconds before the first retry
BACKOFF_CAP = 24 * 3600.0  # no retry waits longer than a day
JITTER = 0.1  # up to +10%, so jobs that failed together do not retry together
MAX_ERROR = 2000  # characters of an error kept per attempt


@dataclass(frozen=True)
class Claimed:
    """A job as a worker holds it: what the handler reads, and the lease that proves ownership."""

    id: int
    kind: str
    args: dict[str, Any]
    queue: str
    attempt: int
    max_attempts: int
    locked_by: str
    lease_expires_at: datetime


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _values(kind: str, args: dict | None, run_at: datetime | None, queue: str, priority: int, max_attempts: int,
            unique_key: str | None, now: datetime) -> dict[str, Any]:
    if not kind:
        raise FieldError("kind", "name the handler that runs the job")
    if args is not None and not isinstance(args, dict):
        raise FieldError("args", "must be a JSON object")
    if max_attempts < 1:
        raise FieldError("max_attempts", "must be at least 1")
    if run_at is not None and run_at.tzinfo is None:
        raise FieldError("run_at", "must be an aware datetime (UTC)")
    return {"kind": kind, "args": args or {}, "queue": queue, "priority": priority, "state": AVAILABLE,
            "attempt": 0, "max_attempts": max_attempts, "scheduled_at": run_at or now, "errors": [],
            "unique_key": unique_key, "created_at": now}


def enqueue(session: Session, kind: str, args: dict | None = None, *, run_at: datetime | None = None,
            queue: str = "default", priority: int = 0, max_attempts: int = 20, unique_key: str | None = None,
            now: datetime | None = None) -> Job | None:
    """Add a job due at `run_at` (default now). With `unique_key`, while a job with that key is not
    finished, the existing job is returned instead of adding another. The caller commits."""
    values = _values(kind, args, run_at, queue, priority, max_attempts, unique_key, now or utcnow())
    if unique_key is None:
        job = Job(**values)
        session.add(job)
        session.flush()
        return job
    insert = (sa.dialects.postgresql.insert if _postgres(session) else sa.dialects.sqlite.insert)(jobs)
    # The partial index's predicate as literal SQL: with bound values PostgreSQL cannot match it to the
    # index once psycopg prepares the statement (its 5th execution), and the insert fails.
    new_id = session.scalar(insert.values(**values).on_conflict_do_nothing(
        index_elements=["unique_key"], index_where=_UNFINISHED_SQL).returning(jobs.c.id))
    if new_id is not None:
        return session.get(Job, new_id)
    return session.scalar(sa.select(Job).where(Job.unique_key == unique_key, Job.state.in_(UNFINISHED)))


def enqueue_many(session: Session, kind: str, many_args: Iterable[dict], *, run_at: datetime | None = None,
                 queue: str = "default", priority: int = 0, max_attempts: int = 20,
                 unique_keys: Sequence[str | None] | None = None, now: datetime | None = None) -> int:
    """Add one job per args in bulk (COPY on PostgreSQL, executemany on SQLite); returns how many.
    With `unique_keys` (one per args), jobs whose key is taken are skipped. The caller commits."""
    from clm.db.bulk import insert_rows

    now = now or utcnow()
    template = _values(kind, {}, run_at, queue, priority, max_attempts, None, now)
    columns = list(template)
    many_args = list(many_args)
    if unique_keys is not None and len(unique_keys) != len(many_args):
        raise FieldError("unique_keys", "give one key (or None) per job")
    keys = unique_keys if unique_keys is not None else [None] * len(many_args)
    rows = []
    for args, key in zip(many_args, keys, strict=True):
        if not isinstance(args, dict):
            raise FieldError("args", "must be a JSON object")
        rows.append(tuple(args if c == "args" else key if c == "unique_key" else template[c] for c in columns))
    if not rows:
        return 0
    if unique_keys is None and _postgres(session):
        _copy(session, columns, rows)
        return len(rows)
    before = _count(session)
    conflict = ("ON CONFLICT (unique_key) WHERE state IN ('available', 'running', 'retryable') DO NOTHING"
                if unique_keys is not None else "")
    insert_rows(session, jobs, columns, rows, on_conflict=conflict)
    return _count(session) - before if unique_keys is not None else len(rows)


def enqueue_each(session: Session, specs: Sequence[dict[str, Any]], now: datetime | None = None) -> None:
    """Add jobs that differ in kind, args, run_at and key (each spec: `enqueue`'s keyword arguments and its
    `kind`) with one executemany; a spec whose `unique_key` is taken by an unfinished job is skipped, as
    `enqueue` would return the existing job. The caller commits."""
    from clm.db.bulk import insert_rows

    if not specs:
        return
    now = now or utcnow()
    rows = [_values(s["kind"], s.get("args"), s.get("run_at"), s.get("queue", "default"), s.get("priority", 0),
                    s.get("max_attempts", 20), s.get("unique_key"), now) for s in specs]
    columns = list(rows[0])
    insert_rows(session, jobs, columns, [tuple(r[c] for c in columns) for r in rows],
                on_conflict="ON CONFLICT (unique_key) WHERE state IN ('available', 'running', 'retryable') DO NOTHING")


def _count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(jobs)) or 0


def _copy(session: Session, columns: list[str], rows: list[tuple]) -> None:
    import orjson

    cursor = session.connection().connection.driver_connection.cursor()
    names = ", ".join(columns)  # from the model, never input
    json_at = [i for i, c in enumerate(columns) if c in ("args", "errors")]
    with cursor.copy(f"COPY jobs ({names}) FROM STDIN") as copy:
        for row in rows:
            row = list(row)
            for i in json_at:
                row[i] = orjson.dumps(row[i]).decode()
            copy.write_row(row)


# Called when rescue_expired parks a job dead, in its transaction: (session, the job as its worker held
# it, error text). The runner passes the kind's dead-job hook.
OnDead = Callable[[Session, Claimed, str], None]


def rescue_expired(session: Session, now: datetime, on_dead: OnDead | None = None) -> int:
    """Running jobs whose lease expired (their worker died or hung) become due again, or dead when
    they have used their attempts (then `on_dead` runs for each); the expiry is kept in their errors.
    Returns how many."""
    query = sa.select(jobs.c.id, jobs.c.kind, jobs.c.args, jobs.c.queue, jobs.c.attempt, jobs.c.max_attempts,
                      jobs.c.errors, jobs.c.locked_by, jobs.c.lease_expires_at).where(
        jobs.c.state == RUNNING, jobs.c.lease_expires_at <= now).limit(1000)
    if _postgres(session):
        query = query.with_for_update(skip_locked=True)
    rows = session.execute(query).all()
    for row in rows:
        error = f"lease expired: worker {row.locked_by} stopped before finishing"
        state = _record_failure(session, row, error, now, permanent=False, delay=0.0)
        if state == DEAD and on_dead is not None:
            on_dead(session, Claimed(row.id, row.kind, row.args, row.queue, row.attempt, row.max_attempts,
                                     row.locked_by, row.lease_expires_at), error)
    return len(rows)


def claim(session: Session, worker_id: str, queues: Sequence[str] = ("default",), limit: int = 10,
          lease_seconds: float = 300, now: datetime | None = None, on_dead: OnDead | None = None) -> list[Claimed]:
    """Take up to `limit` due jobs for `worker_id` and lease them; the caller commits at once.
    Jobs whose lease expired are rescued first (`on_dead`: see rescue_expired).

    PostgreSQL: the due rows are locked FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint
    batches without waiting on each other. SQLite has one writer: call it after `for_writing`."""
    now = now or utcnow()
    rescue_expired(session, now, on_dead)
    due = (sa.select(jobs.c.id)
           .where(jobs.c.state.in_(WAITING), jobs.c.queue.in_(list(queues)), jobs.c.scheduled_at <= now)
           .order_by(jobs.c.priority, jobs.c.scheduled_at, jobs.c.id).limit(limit))
    if _postgres(session):
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    if not ids:
        return []
    lease = now + timedelta(seconds=lease_seconds)
    rows = session.execute(
        sa.update(jobs).where(jobs.c.id.in_(ids))
        .values(state=RUNNING, attempt=jobs.c.attempt + 1, attempted_at=now, locked_by=worker_id,
                lease_expires_at=lease)
        .returning(jobs.c.id, jobs.c.kind, jobs.c.args, jobs.c.queue, jobs.c.attempt, jobs.c.max_attempts,
                   jobs.c.locked_by, jobs.c.lease_expires_at)
    ).all()
    return sorted((Claimed(*row) for row in rows), key=lambda j: j.id)


def _held(job: Claimed):
    return sa.and_(jobs.c.id == job.id, jobs.c.state == RUNNING, jobs.c.locked_by == job.locked_by,
                   jobs.c.attempt == job.attempt)


def complete(session: Session, job: Claimed, now: datetime | None = None) -> bool:
    """Mark `job` done, in the transaction of its effects. False when the caller no longer holds it
    (its lease was taken over, or it was cancelled): then the caller must roll back."""
    done = session.execute(sa.update(jobs).where(_held(job)).values(
        state=COMPLETED, completed_at=now or utcnow(), lease_expires_at=None))
    return done.rowcount == 1


def complete_many(session: Session, done: Sequence[Claimed], now: datetime | None = None) -> int:
    """Mark many held jobs done with one UPDATE; returns how many it changed. Fewer than `len(done)`
    means some were taken over or cancelled: the caller must roll back the whole transaction."""
    if not done:
        return 0
    result = session.execute(sa.update(jobs).where(
        jobs.c.state == RUNNING,
        sa.tuple_(jobs.c.id, jobs.c.attempt, jobs.c.locked_by).in_([(j.id, j.attempt, j.locked_by) for j in done]),
    ).values(state=COMPLETED, completed_at=now or utcnow(), lease_expires_at=None))
    return result.rowcount


def extend_lease(session: Session, job: Claimed, lease_seconds: float, now: datetime | None = None) -> Claimed | None:
    """Heartbeat for a long job: renew the lease (commit it from a session of its own). None when lost."""
    lease = (now or utcnow()) + timedelta(seconds=lease_seconds)
    done = session.execute(sa.update(jobs).where(_held(job)).values(lease_expires_at=lease))
    if done.rowcount != 1:
        return None
    from dataclasses import replace

    return replace(job, lease_expires_at=lease)


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retrying after failed attempt `attempt` (1-based): 15 s doubling per
    attempt up to a day, plus up to 10% jitter drawn from `rng` (seed it for a fixed schedule)."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempt - 1, 32))
    return delay * (1 + JITTER * (rng or random).random())


def fail(session: Session, job: Claimed, error: str, *, permanent: bool = False, now: datetime | None = None,
         rng: random.Random | None = None) -> str | None:
    """Record a failed attempt: retryable after a backoff, or dead (permanent, or out of attempts)
    with every error kept for a person to read. Returns the new state; None when not held."""
    now = now or utcnow()
    query = sa.select(jobs.c.id, jobs.c.attempt, jobs.c.max_attempts, jobs.c.errors).where(_held(job))
    if _postgres(session):
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        return None
    return _record_failure(session, row, error, now, permanent=permanent, delay=backoff(row.attempt, rng))


def _record_failure(session: Session, row, error: str, now: datetime, *, permanent: bool, delay: float) -> str:
    errors = [*(row.errors or []), {"at": now.isoformat(), "attempt": row.attempt, "error": str(error)[:MAX_ERROR]}]
    dead = permanent or row.attempt >= row.max_attempts
    values: dict[str, Any] = {"errors": errors, "lease_expires_at": None, "locked_by": None}
    if dead:
        values.update(state=DEAD, completed_at=now)
    else:
        values.update(state=RETRYABLE, scheduled_at=now + timedelta(seconds=delay))
    session.execute(sa.update(jobs).where(jobs.c.id == row.id).values(**values))
    return values["state"]


def _get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id, with_for_update=_postgres(session), populate_existing=True)
    if job is None:
        raise NotFound("job", job_id)
    return job


def cancel(session: Session, job_id: int, now: datetime | None = None) -> Job:
    """Stop a job that has not finished (a running one's worker finds it gone and rolls back), or
    dismiss a dead one: cancelled jobs are pruned with the finished ones."""
    job = _get(session, job_id)
    if job.state in (*UNFINISHED, DEAD):
        job.state, job.completed_at, job.lease_expires_at = CANCELLED, now or utcnow(), None
        session.flush()
    return job


def retry_dead(session: Session, job_id: int, now: datetime | None = None) -> Job:
    """A person re-queues a dead or cancelled job: due now, with one more attempt; errors are kept."""
    job = _get(session, job_id)
    if job.state not in (DEAD, CANCELLED):
        raise FieldError("id", f"job {job_id} is {job.state}; only dead or cancelled jobs can be retried")
    job.state, job.scheduled_at, job.completed_at = AVAILABLE, now or utcnow(), None
    job.locked_by = job.lease_expires_at = None
    job.max_attempts = max(job.max_attempts, job.attempt + 1)
    session.flush()
    return job


def stats(session: Session) -> dict[tuple[str, str], int]:
    """Jobs per (queue, state)."""
    rows = session.execute(sa.select(jobs.c.queue, jobs.c.state, sa.func.count()).group_by(jobs.c.queue, jobs.c.state))
    return {(q, s): n for q, s, n in rows}


def prune(session: Session, before: datetime, limit: int = 10_000) -> int:
    """Delete completed and cancelled jobs finished before `before` (dead ones stay for a person)."""
    old = (sa.select(jobs.c.id).where(jobs.c.state.in_((COMPLETED, CANCELLED)), jobs.c.completed_at < before)
           .limit(limit).scalar_subquery())
    return session.execute(sa.delete(jobs).where(jobs.c.id.in_(old))).rowcount
