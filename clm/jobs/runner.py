"""Running due jobs: the handler registry and `run_due`, the step the worker calls each round.

A job's database effects and its "completed" commit or roll back as one. By default each job has a
transaction of its own. A kind registered `batchable` (its handler only writes to the database and
never commits) runs with the other batchable jobs of the claimed batch in ONE transaction, each job in
a SAVEPOINT, and the jobs that succeeded are completed by one ownership-checked UPDATE: one durable
commit for the batch instead of one per job. A crash before that commit loses the whole batch, whose
leases expire and whose jobs are retried. A failure (a `JobError` or any exception) rolls back only
that job's savepoint and is recorded on the job in a fresh transaction after the batch; one job's
failure never stops the others.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from clm.db.engine import for_writing
from clm.jobs import queue
from clm.jobs.queue import Claimed
from clm.lib.clock import utcnow

log = logging.getLogger("clm.jobs")

Handler = Callable[[Session, Claimed], None]
# Called in the transaction that parks a job dead: (session, job, error text). The capability records
# the failure where a person looks (a journey run parked with its error).
DeadHook = Callable[[Session, Claimed, str], None]
# Runs a claimed batch of one kind itself, committing as it goes and completing (or failing) each job in
# the transaction of its effects; returns the jobs it could not run with why, for the runner to record.
ManyHandler = Callable[[sessionmaker[Session], Sequence[Claimed]], list[tuple[Claimed, BaseException]]]


class JobError(Exception):
    """A handler's failure. `permanent=True` parks the job as dead at once (retrying cannot help:
    bad arguments, a deleted customer); otherwise it is retried with backoff until its attempts run out."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class LeaseLost(Exception):
    """The job was taken over (lease expired) or cancelled while running; its work is rolled back."""


class Registry:
    """Job kinds and their handlers; built by `clm.jobs.registry.build_registry`, never at import."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._batchable: set[str] = set()
        self._on_dead: dict[str, DeadHook] = {}
        self._many: dict[str, ManyHandler] = {}

    def register(self, kind: str, fn: Handler, *, batchable: bool = False, on_dead: DeadHook | None = None,
                 many: ManyHandler | None = None) -> Handler:
        """`batchable`: the handler's effects are database writes in the session it is given and it never
        commits, so it may share one transaction with other jobs (each in a savepoint). `on_dead` runs
        when a job of this kind is parked dead, in the transaction recording it. `many` runs the kind's
        jobs of a claimed batch together when the handler must commit part-way (a send to a provider):
        it completes each job with `queue.complete`/`queue.fail` in the transaction of its effects."""
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} is registered twice")
        if batchable and many is not None:
            raise ValueError(f"job kind {kind!r}: batchable and many exclude each other")
        self._handlers[kind] = fn
        if batchable:
            self._batchable.add(kind)
        if on_dead is not None:
            self._on_dead[kind] = on_dead
        if many is not None:
            self._many[kind] = many
        return fn

    def many(self, kind: str) -> ManyHandler | None:
        return self._many.get(kind)

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def batchable(self, kind: str) -> bool:
        return kind in self._batchable

    def on_dead(self, kind: str) -> DeadHook | None:
        return self._on_dead.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def run_dead_hook(self, session: Session, job: Claimed, error: str) -> None:
        """The kind's dead-job hook, if any, in a savepoint: a failing hook is logged and the job stays
        dead (a broken hook must not stop the claim that rescued it, round after round)."""
        hook = self._on_dead.get(job.kind)
        if hook is None:
            return
        try:
            with session.begin_nested():
                hook(session, job, error)
        except Exception:
            log.exception("job %s (%s): its dead-job hook failed", job.id, job.kind)


def worker_id() -> str:
    """host:pid:random, unique per worker process (and per embedded worker)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def claim_due(session_factory: sessionmaker[Session], worker: str, queues: Sequence[str], limit: int,
              lease_seconds: float, now: datetime, registry: Registry | None = None) -> list[Claimed]:
    """Claim a batch in a short transaction of its own (the lease, not a lock, holds the jobs). A job
    whose worker died on its last attempt is parked dead here, with its kind's hook (`registry`)."""
    with session_factory() as session:
        for_writing(session)
        claimed = queue.claim(session, worker, queues, limit, lease_seconds, now,
                              on_dead=registry.run_dead_hook if registry is not None else None)
        session.commit()
        return claimed


def run_job(session_factory: sessionmaker[Session], registry: Registry, job: Claimed,
            now: datetime | None = None, rng: random.Random | None = None) -> str:
    """Run one claimed job and record its outcome; returns the job's new state (or "lost")."""
    handler = registry.get(job.kind)
    error: BaseException | None = None
    with session_factory() as session:
        for_writing(session)
        try:
            if handler is None:
                raise JobError(f"no handler is registered for job kind {job.kind!r}", permanent=True)
            handler(session, job)
            if not queue.complete(session, job, now or utcnow()):
                raise LeaseLost(f"job {job.id} was taken over or cancelled while it ran")
            session.commit()
            return queue.COMPLETED
        except LeaseLost:
            session.rollback()
            log.warning("job %s (%s): lease lost, its work was rolled back", job.id, job.kind)
            return "lost"
        except Exception as exc:  # any handler failure is recorded on the job, never raised to the loop
            session.rollback()
            error = exc
    return record_failure(session_factory, registry, job, error, now, rng)


def record_failure(session_factory: sessionmaker[Session], registry: Registry, job: Claimed, error: BaseException,
                   now: datetime | None = None, rng: random.Random | None = None) -> str:
    """Record a failed attempt in a transaction of its own (retryable, or dead with the kind's hook)."""
    permanent = isinstance(error, JobError) and error.permanent
    text = str(error) if isinstance(error, JobError) else f"{type(error).__name__}: {error}"
    with session_factory() as session:
        for_writing(session)
        state = queue.fail(session, job, text, permanent=permanent, now=now or utcnow(), rng=rng)
        if state == queue.DEAD:
            registry.run_dead_hook(session, job, text)
        session.commit()
    log.warning("job %s (%s) attempt %s failed (%s): %s", job.id, job.kind, job.attempt, state, text)
    return state or "lost"


def run_batch(session_factory: sessionmaker[Session], registry: Registry, batch: Sequence[Claimed],
              now: datetime | None = None, rng: random.Random | None = None) -> dict[int, str]:
    """Run batchable jobs in one transaction, each in a savepoint, and complete the successful ones with
    one UPDATE that checks this worker still holds every one of them. If any was taken over or
    cancelled meanwhile, the whole transaction is rolled back and the jobs run again one transaction
    each (so each is checked on its own). Failures are recorded afterwards. Returns id -> new state."""
    done: list[Claimed] = []
    failed: list[tuple[Claimed, BaseException]] = []
    out: dict[int, str] = {}
    with session_factory() as session:
        for_writing(session)
        for job in batch:
            handler = registry.get(job.kind)
            try:
                with session.begin_nested():
                    if handler is None:
                        raise JobError(f"no handler is registered for job kind {job.kind!r}", permanent=True)
                    handler(session, job)
                done.append(job)
            except Exception as exc:  # only this job's savepoint is rolled back
                failed.append((job, exc))
        if done and queue.complete_many(session, done, now or utcnow()) != len(done):
            session.rollback()
            log.warning("batch of %s jobs: some were taken over or cancelled; running them one by one", len(done))
            for job in done:
                out[job.id] = run_job(session_factory, registry, job, now, rng)
        else:
            session.commit()
            out.update((job.id, queue.COMPLETED) for job in done)
    for job, error in failed:
        out[job.id] = record_failure(session_factory, registry, job, error, now, rng)
    return out


def run_due(session_factory: sessionmaker[Session], registry: Registry, worker: str, now: datetime | None = None,
            limit: int = 100, queues: Sequence[str] = ("default",), lease_seconds: float = 300,
            rng: random.Random | None = None) -> int:
    """Claim up to `limit` due jobs and run each; returns how many ran (0: nothing was due).

    `now` fixes the clock for the claim and the outcomes (tests); by default each uses the real time."""
    claimed = claim_due(session_factory, worker, queues, limit, lease_seconds, now or utcnow(), registry)
    together = [job for job in claimed if registry.batchable(job.kind)]
    if together:
        run_batch(session_factory, registry, together, now, rng)
    by_kind: dict[str, list[Claimed]] = {}
    for job in claimed:
        if registry.many(job.kind) is not None:
            by_kind.setdefault(job.kind, []).append(job)
        elif not registry.batchable(job.kind):
            run_job(session_factory, registry, job, now, rng)
    for kind, group in by_kind.items():
        run_many(session_factory, registry, kind, group, now, rng)
    return len(claimed)


def run_many(session_factory: sessionmaker[Session], registry: Registry, kind: str, group: Sequence[Claimed],
             now: datetime | None = None, rng: random.Random | None = None) -> None:
    """Hand a kind's jobs to its `many` handler; record the failures it returns. If the handler itself
    breaks, every job of the group is failed: the ones it completed are no longer held by this worker,
    so `fail` leaves them alone."""
    try:
        failures = registry.many(kind)(session_factory, group)
    except Exception as exc:
        log.exception("the %s batch of %s jobs broke", kind, len(group))
        failures = [(job, exc) for job in group]
    for job, error in failures:
        record_failure(session_factory, registry, job, error, now, rng)
