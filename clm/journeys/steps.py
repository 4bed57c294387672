"""The `journey.step` job kind and the journeys' worker steps (triggers, waits for events, goals, dates).

`journey.step` is batchable: a step only writes to the database (a message is a row of the channels'
outbox, sent by its own job), so a claimed batch of steps shares one transaction, a savepoint each.
When a step has failed its last attempt the job is dead and the run is parked with the error; retrying
the dead job (dashboard or `clm jobs retry`) runs the step again and un-parks the run.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.jobs.queue import Claimed
from clm.journeys import engine
from clm.journeys import models as m
from clm.journeys.models import JourneyRun
from clm.lib.clock import utcnow


def register(registry, settings) -> None:
    """Add the journeys' job kind to the worker's registry (clm.jobs.registry.build_registry)."""

    def step(session: Session, job: Claimed) -> None:
        engine.run_step(session, int(job.args["run_id"]), int(job.args["seq"]), utcnow(), settings.timezone, job.id)

    registry.register(engine.STEP_KIND, step, batchable=True, on_dead=park)


def park(session: Session, job: Claimed, error: str) -> None:
    """The step failed every attempt: the run waits at its node with the error for a person."""
    now = utcnow()
    session.execute(sa.update(JourneyRun).where(
        JourneyRun.id == int(job.args["run_id"]), JourneyRun.seq == int(job.args["seq"]),
        JourneyRun.status.in_(m.OPEN)).values(status=m.PARKED, error=error[:2000], updated_at=now))


def worker_steps(settings) -> list:
    """The journeys' worker steps: outbox and events consumers every round, the date sweep hourly."""
    from clm.journeys import consumers
    from clm.worker.steps import Step

    def timezone() -> str:
        return settings.timezone

    def dates(session: Session, now) -> int:
        return consumers.sweep_dates(session, now, settings.timezone)

    return [Step("journeys.outbox", consumers.OutboxConsumer(timezone)),
            Step("journeys.events", consumers.EventsConsumer(timezone)),
            Step("journeys.dates", dates, every=timedelta(hours=1))]
