"""Running due jobs: the handler registry and `run_due`, the step the worker calls each round.

Each job runs in its own transaction together with its completion, so a job's database effects and
its "completed" commit or roll back as one. A failure (a `JobError` or any exception) rolls the
handler back and is recorded on the job in a fresh transaction; one job's failure never stops the
others in the batch.
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

    def register(self, kind: str, fn: Handler) -> Handler:
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} is registered twice")
        self._handlers[kind] = fn
        return fn

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._handlers)


def worker_id() -> str:
    """host:pid:random, unique per worker process (and per embedded worker)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def claim_due(session_factory: sessionmaker[Session], worker: str, queues: Sequence[str], limit: int,
              lease_seconds: float, now: datetime) -> list[Claimed]:
    """Claim a batch in a short transaction of its own (the lease, not a lock, holds the jobs)."""
    with session_factory() as session:
        for_writing(session)
        claimed = queue.claim(session, worker, queues, limit, lease_seconds, now)
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
    permanent = isinstance(error, JobError) and error.permanent
    text = str(error) if isinstance(error, JobError) else f"{type(error).__name__}: {error}"
    with session_factory() as session:
        for_writing(session)
        state = queue.fail(session, job, text, permanent=permanent, now=now or utcnow(), rng=rng)
        session.commit()
    log.warning("job %s (%s) attempt %s failed (%s): %s", job.id, job.kind, job.attempt, state, text)
    return state or "lost"


def run_due(session_factory: sessionmaker[Session], registry: Registry, worker: str, now: datetime | None = None,
            limit: int = 100, queues: Sequence[str] = ("default",), lease_seconds: float = 300,
            rng: random.Random | None = None) -> int:
    """Claim up to `limit` due jobs and run each; returns how many ran (0: nothing was due).

    `now` fixes the clock for the claim and the outcomes (tests); by default each uses the real time."""
    claimed = claim_due(session_factory, worker, queues, limit, lease_seconds, now or utcnow())
    for job in claimed:
        run_job(session_factory, registry, job, now, rng)
    return len(claimed)
