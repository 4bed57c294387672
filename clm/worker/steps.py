"""The worker's steps: what runs, claimed so that several workers never apply the same work twice.

A step is a callable (session, now) -> amount of work done. Consumers run every round; periodic
steps run when their interval has passed since any worker last started them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.db.upsert import insert_for
from clm.outbox.models import OutboxCursor

_cursors = OutboxCursor.__table__


@dataclass
class Step:
    name: str
    run: Callable[[Session, datetime], int]
    every: timedelta | None = None  # None: a consumer, run every round
    # True: run(session_factory, now) opens its own transactions, in every worker at once (the job queue)
    concurrent: bool = False


def build_steps(settings) -> list[Step]:
    """The registry, built when a worker starts (no import-time side effects). Order matters: order
    facts are applied before engagement, so an arriving order and its event agree on the stage."""
    from clm.lifecycle.consumers import EventsConsumer, OutboxConsumer
    from clm.lifecycle.rules import current_rules
    from clm.lifecycle.service import sweep

    def rules():
        return current_rules(settings)

    def periodic_sweep(session: Session, now: datetime) -> int:
        def commit_chunk(_done, _total):
            session.commit()  # one chunk per transaction: ingestion is not held up for the whole sweep
            from clm.db.engine import for_writing

            for_writing(session)

        return sweep(session, now, rules(), on_chunk=commit_chunk)

    def daily_scores(session: Session, now: datetime) -> int:
        from clm.analytics.refresh import refresh_if_due
        from clm.db.engine import for_writing

        def commit_chunk(phase, _done, _total):
            if phase == "write":
                session.commit()
                for_writing(session)

        return refresh_if_due(session, now, currency=settings.default_currency, timezone=settings.timezone,
                              on_chunk=commit_chunk)

    return [
        Step("lifecycle.outbox", OutboxConsumer(rules)),
        Step("lifecycle.events", EventsConsumer(rules)),
        Step("lifecycle.sweep", periodic_sweep, every=timedelta(minutes=settings.lifecycle_sweep_minutes)),
        # hourly check, daily work: a refresh runs when the newest one (CLI, demo or worker) is a day old
        Step("analytics.refresh", daily_scores, every=timedelta(hours=1)),
        *loyalty_steps(settings),  # before segments: a segment on points sees this round's ledger changes
        *segment_steps(settings),
        *journey_steps(settings),
        *sales_steps(settings),
        *service_steps(settings),
        *job_steps(settings),
    ]


def sales_steps(settings) -> list[Step]:
    """Lead scores: hourly, new leads are scored; once a day the model is retrained and all open leads rescored."""
    from clm.sales.scoring.service import refresh

    def scores(session: Session, now: datetime) -> int:
        from clm.db.engine import for_writing

        def commit_chunk(_done: int) -> None:
            session.commit()  # a chunk of leads per transaction: capture is not held up by a rescore
            for_writing(session)

        return refresh(session, now, on_chunk=commit_chunk)[1]

    return [Step("sales.scores", scores, every=timedelta(hours=1))]


def loyalty_steps(settings) -> list[Step]:
    """Points from orders, refunds and events; the sweep releases, expires, reviews tiers, rewards referrals;
    messages for points earned, tiers reached and points expiring within 30 days."""
    from clm.loyalty import consumers, messages

    def commit_chunk(session: Session) -> None:
        from clm.db.engine import for_writing

        session.commit()  # one chunk of members per transaction: each is locked only briefly
        for_writing(session)

    return [
        Step("loyalty.outbox", consumers.OutboxConsumer()),
        Step("loyalty.events", consumers.EventsConsumer()),
        Step("loyalty.sweep", consumers.sweep_step(commit_chunk), every=timedelta(minutes=15)),
        Step("loyalty.messages", messages.AnnounceConsumer(settings)),
        Step("loyalty.expiring", messages.expiring_step(settings), every=timedelta(hours=1)),
    ]


def service_steps(settings) -> list[Step]:
    """The service desk's inbound messages (stored by the webhooks and the API, filed here in batches); its
    queue: assign waiting tickets to agents with room (also done whenever room frees); automation: triggers
    on created and updated tickets, CSAT questions for solved ones, elapsed-trigger jobs."""
    from clm.service.automation_steps import AutomationConsumer
    from clm.service.inbound import InboundConsumer
    from clm.service.routing import drain

    return [Step("service.inbound", InboundConsumer()),
            Step("service.queue", drain, every=timedelta(minutes=1)),
            Step("service.automation", AutomationConsumer(settings))]


def job_steps(settings) -> list[Step]:
    """The durable job queue: due jobs run in every worker at once; old finished jobs are pruned."""
    from clm.jobs.steps import prune_step, run_step

    return [Step("jobs.run", run_step(settings), concurrent=True),
            Step("jobs.prune", prune_step, every=timedelta(hours=1))]


def journey_steps(settings) -> list[Step]:
    """Journeys: entries from the outbox and the events, waits for events, goals, the daily date sweep."""
    from clm.journeys.steps import worker_steps

    return worker_steps(settings)


def segment_steps(settings) -> list[Step]:
    """Segment membership, after the lifecycle (it reads the stats and stages those steps keep)."""
    from clm.segments import consumers

    def timezone() -> str:
        return settings.timezone

    def periodic_sweep(session: Session, now: datetime) -> int:
        def commit_chunk():
            from clm.db.engine import for_writing

            session.commit()
            for_writing(session)

        return consumers.sweep(session, now, settings.timezone, on_chunk=commit_chunk)

    return [
        Step("segments.outbox", consumers.OutboxConsumer(timezone)),
        Step("segments.events", consumers.EventsConsumer(timezone)),
        Step("segments.sweep", periodic_sweep, every=timedelta(minutes=consumers.SWEEP_MINUTES)),
    ]


def claim(session: Session, step: Step, now: datetime) -> bool:
    """Take `step` for this transaction, or False when another worker holds it (or it is not due).

    PostgreSQL: the step's row in outbox_cursors is locked FOR UPDATE SKIP LOCKED, so a second worker
    skips the step instead of double-applying it. SQLite has one writer (BEGIN IMMEDIATE) anyway.
    """
    session.execute(insert_for(session, _cursors).values(consumer=step.name, last_id=0, updated_at=_epoch())
                    .on_conflict_do_nothing(index_elements=["consumer"]))
    query = sa.select(_cursors.c.updated_at).where(_cursors.c.consumer == step.name)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = session.execute(query).first()
    if row is None:
        return False
    if step.every is None:
        return True
    if row.updated_at > now - step.every:
        return False
    # Started: other workers see it as done until the interval passes again, even mid-sweep.
    session.execute(sa.update(_cursors).where(_cursors.c.consumer == step.name).values(updated_at=now))
    return True


def _epoch() -> datetime:
    from datetime import UTC

    return datetime(1970, 1, 1, tzinfo=UTC)
