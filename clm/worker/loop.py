"""The worker: a round of steps, and a thin loop around it that stops gracefully.

Tests call `run_round` (or the steps themselves), never `run_forever`.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from clm.db.engine import for_writing
from clm.lib.clock import utcnow
from clm.worker.steps import Step, claim

log = logging.getLogger("clm.worker")


class Worker:
    def __init__(self, session_factory: sessionmaker[Session], steps: list[Step], poll_seconds: float = 1.0):
        self.session_factory = session_factory
        self.steps = steps
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()

    def run_step(self, step: Step, now: datetime | None = None) -> int:
        """Claim and run one step in its own transaction; a failure is logged and rolled back."""
        now = now or utcnow()
        if step.concurrent:
            try:
                return step.run(self.session_factory, now)
            except Exception:
                log.exception("worker step %s failed; it will be retried", step.name)
                return 0
        with self.session_factory() as session:
            for_writing(session)
            try:
                if not claim(session, step, now):
                    session.rollback()
                    return 0
                if step.every is not None:
                    session.commit()
                    for_writing(session)
                done = step.run(session, now)
                session.commit()
                return done
            except Exception:
                session.rollback()
                log.exception("worker step %s failed; it will be retried", step.name)
                return 0

    def run_round(self, now: datetime | None = None) -> int:
        """Every step once; returns the work done (0: nothing was waiting)."""
        done = 0
        for step in self.steps:
            if self.stopping.is_set():
                break
            done += self.run_step(step, now)
        return done

    def run_forever(self) -> None:
        """Rounds until `stop()`: straight on while there is work, else wait `poll_seconds`."""
        log.info("worker started: %s", ", ".join(s.name for s in self.steps))
        while not self.stopping.is_set():
            if not self.run_round():
                self.stopping.wait(self.poll_seconds)
        log.info("worker stopped")

    def stop(self, *_args) -> None:
        self.stopping.set()

    def start_thread(self) -> threading.Thread:
        """Run in a background thread (`clm serve`'s embedded worker)."""
        thread = threading.Thread(target=self.run_forever, name="clm-worker", daemon=True)
        thread.start()
        return thread
