"""The job queue's worker steps (registered in clm.worker.steps.build_steps)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from clm.jobs import queue
from clm.jobs.runner import run_due, worker_id

KEEP_FINISHED = timedelta(days=7)  # completed and cancelled jobs stay this long for `clm jobs list`


def run_step(settings, batch: int = 100):
    """A step that claims and runs one batch of due jobs per round, as this worker."""
    from clm.jobs.registry import build_registry

    registry = build_registry(settings)
    me = worker_id()

    def run(session_factory: sessionmaker[Session], now: datetime) -> int:
        return run_due(session_factory, registry, me, now=now, limit=batch)

    return run


def prune_step(session: Session, now: datetime) -> int:
    return queue.prune(session, now - KEEP_FINISHED)
