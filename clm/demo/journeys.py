"""The demo's journeys: the lifecycle playbook installed `days` ago and run over the shop's last days.

The build holds back every message after `start` (now - days). The shop as it was at `start` is
loaded, its stages and scores computed as of then, and the playbook installed and activated then. The
held-back traffic is then replayed hour by hour through the real ingestion path, and after each hour
a worker round runs at that hour's clock: the lifecycle consumers (stats, stages, `stage.changed`),
its daily sweep (customers slipping to "at risk"), the journeys' consumers and date sweep, and the
due jobs: `journey.step` through the journeys engine, `channels.send` through a demo provider that
delivers every message the guardrails let through and reports opens and clicks at plausible rates
(seeded by the message id). So runs, steps, messages and conversions are made by the same code as in
a live shop, at the times they would have happened; conversions and attributed revenue come from the
shop's real orders in the goal windows (the generated customers do not react to the messages, so
A/B uplift is about zero: it measures the history, not the copy).

Consent: a shop records marketing consent at sign-up (the form's checkbox). The demo grants email
marketing to 70 % of customers with an email and SMS marketing to 40 % of customers with a phone
(drawn from the customer id and the seed), recorded when the customer was first seen; customers of
the replayed days get theirs right after the hour that created them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from clm.db.engine import for_writing
from clm.db.upsert import insert_for

EMAIL_CONSENT, SMS_CONSENT = 0.70, 0.40
# What the demo provider reports: (delivered, opened | delivered, clicked | opened) by channel.
RATES = {"email": (0.97, 0.32, 0.18), "sms": (0.95, 0.0, 0.0), "zalo": (0.93, 0.55, 0.10),
         "messenger": (0.96, 0.60, 0.12), "webhook": (1.0, 0.0, 0.0)}
DEMO_WORKER = "clm-demo"


@dataclass
class Replay:
    start: datetime
    end: datetime
    messages: int = 0
    hours: int = 0
    steps: int = 0
    sent: int = 0
    seconds: float = 0.0
    held: list[dict] = field(default_factory=list)


def hold_back(stories: Iterable[list[dict]], start: datetime, replay: Replay) -> Iterator[list[dict]]:
    """Each story up to `start`; the rest of it is kept in `replay.held` for `run`."""
    for story in stories:
        cut = len(story)
        while cut and story[cut - 1]["timestamp"] >= start:
            cut -= 1
        if cut < len(story):
            replay.held.extend(story[cut:])
        yield story[:cut]


def grant_consents(session: Session, seed: int, after_id: int = 0, at: datetime | None = None) -> int:
    """Marketing consent for the demo's share of customers with id > after_id (see the module docstring),
    recorded when each was first seen (or at `at`); returns rows written."""
    from clm.customers.models import Consent, Customer
    from clm.db.bulk import insert_rows

    rows = []
    for cid, email, phone, seen in session.execute(
            sa.select(Customer.id, Customer.email, Customer.phone, sa.func.coalesce(Customer.first_seen_at,
                                                                                  Customer.created_at))
            .where(Customer.id > after_id, Customer.merged_into_id.is_(None)).order_by(Customer.id)):
        draw = random.Random(seed * 1_000_003 + cid).random()
        when = at or seen
        if email and draw < EMAIL_CONSENT:
            rows.append((cid, "email", "marketing", True, "demo: sign-up form", when))
        if phone and draw < SMS_CONSENT:
            rows.append((cid, "sms", "marketing", True, "demo: sign-up form", when))
    insert_rows(session, Consent.__table__, ("customer_id", "channel", "purpose", "granted", "source",
                                             "recorded_at"), rows)
    return len(rows)


def install_playbook(session_factory: sessionmaker[Session], start: datetime, timezone: str) -> list:
    """Install and activate every playbook journey at `start`; the journeys' consumers begin at the head of
    the outbox and the events (what came before `start` is history the playbook never saw)."""
    from clm.journeys import playbook
    from clm.journeys.consumers import EventsConsumer, OutboxConsumer
    from clm.outbox.models import OutboxCursor, OutboxEvent
    from clm.tracking.models import Event

    with session_factory() as session:
        for_writing(session)
        results = playbook.install(session, activate=True, now=start, timezone=timezone)
        cursors = OutboxCursor.__table__
        for consumer, table in ((OutboxConsumer.name, OutboxEvent.__table__), (EventsConsumer.name, Event.__table__)):
            last = session.scalar(sa.select(sa.func.max(table.c.id))) or 0
            session.execute(insert_for(session, cursors).values(consumer=consumer, last_id=last, updated_at=start)
                            .on_conflict_do_update(index_elements=["consumer"],
                                                   set_={"last_id": last, "updated_at": start}))
        session.commit()
    return results


def deliver(session: Session, message_id: int, now: datetime, end: datetime, seed: int) -> bool:
    """The demo provider: hand a queued message over and report what its customer did (opens and clicks a
    few minutes to hours later, never after `end`). The guardrails ran when the message was queued (consent,
    quiet hours, the cap); nobody withdraws consent in the replayed days, so they are not run again."""
    from clm.channels.models import DEFERRED, QUEUED, Message
    from clm.channels.status import record_status

    message = session.get(Message, message_id)
    if message is None or message.status not in (QUEUED, DEFERRED):
        return False
    rnd = random.Random(seed * 7_919 + message_id)
    message.status, message.provider, message.provider_id = "sending", "demo", f"demo-{message_id}"
    message.attempts, message.sent_at = message.attempts + 1, now
    record_status(session, message, "sent", at=now, force=True)
    delivered, opened, clicked = RATES.get(message.channel, RATES["email"])
    if rnd.random() >= delivered:
        record_status(session, message, "failed", reason="demo: the carrier did not deliver", at=now, force=True)
        return True
    at = min(now + timedelta(seconds=rnd.uniform(2, 90)), end)
    record_status(session, message, "delivered", at=at)
    if rnd.random() < opened:
        at = min(at + timedelta(minutes=rnd.expovariate(1 / 180)), end)
        record_status(session, message, "opened", at=at)
        if rnd.random() < clicked:
            record_status(session, message, "clicked", at=min(at + timedelta(seconds=rnd.uniform(5, 600)), end))
    return True


def run_jobs(session_factory: sessionmaker[Session], now: datetime, end: datetime, timezone: str, seed: int,
             registry=None) -> tuple[int, int]:
    """Every job due at `now`: journey steps through the engine, sends through the demo provider, any other
    kind through its handler. Returns (journey steps, messages handed over)."""
    from clm.channels.service import SEND_JOB
    from clm.jobs import queue
    from clm.journeys import engine

    steps = sent = 0
    while True:
        with session_factory() as session:
            for_writing(session)
            claimed = queue.claim(session, DEMO_WORKER, ("default",), 500, 600, now)
            session.commit()
            if not claimed:
                return steps, sent
            for_writing(session)
            done, failed = [], []
            for job in claimed:
                try:
                    with session.begin_nested():
                        if job.kind == engine.STEP_KIND:
                            engine.run_step(session, int(job.args["run_id"]), int(job.args["seq"]), now, timezone,
                                            job.id)
                            steps += 1
                        elif job.kind == SEND_JOB:
                            sent += deliver(session, int(job.args["message_id"]), now, end, seed)
                        else:
                            handler = registry.get(job.kind) if registry is not None else None
                            if handler is None:
                                raise LookupError(f"no handler is registered for job kind {job.kind!r}")
                            handler(session, job)
                    done.append(job)
                except Exception as exc:  # one broken step never stops the replay (the queue retries it)
                    failed.append((job, exc))
            queue.complete_many(session, done, now)
            for job, exc in failed:
                queue.fail(session, job, f"{type(exc).__name__}: {exc}", now=now)
            session.commit()


def run(session_factory: sessionmaker[Session], replay: Replay, settings, seed: int,
        on_hour: Callable[[Replay], None] | None = None) -> Replay:
    """Replay the held-back messages hour by hour, each hour followed by a worker round at its clock."""
    from clm.customers.models import Customer
    from clm.demo.load import LoadStats, write_group
    from clm.journeys.steps import worker_steps
    from clm.lifecycle.consumers import EventsConsumer, OutboxConsumer
    from clm.lifecycle.rules import current_rules
    from clm.lifecycle.service import sweep
    from clm.worker.loop import Worker
    from clm.worker.steps import Step

    started = time.perf_counter()

    def rules():
        return current_rules(settings)

    def lifecycle_sweep(session: Session, now: datetime) -> int:
        return sweep(session, now, rules())

    steps = [Step("lifecycle.outbox", OutboxConsumer(rules)), Step("lifecycle.events", EventsConsumer(rules)),
             # clm worker sweeps every CLM_LIFECYCLE_SWEEP_MINUTES; daily here keeps the build short. Stage
             # history keeps the exact time a customer crossed into "at risk" either way.
             Step("lifecycle.sweep", lifecycle_sweep, every=timedelta(days=1)),
             *worker_steps(settings)]
    for step in steps:
        # The tails look back `grace` seconds of the real clock for rows committed late (PostgreSQL); the
        # demo is SQLite (ids commit in order), and the rows the build wrote seconds ago (stage history
        # as of `start`) are behind the cursors on purpose.
        tail = getattr(step.run, "tail", None)
        if tail is not None:
            tail.grace = timedelta(0)
    worker = Worker(session_factory, steps)
    from clm.jobs.registry import build_registry

    registry = build_registry(settings)  # kinds other than steps and sends (none in the demo so far)
    held = sorted(replay.held, key=lambda m: m["timestamp"])
    replay.held = []
    stats = LoadStats()
    with session_factory() as session:
        last_customer = session.scalar(sa.select(sa.func.max(Customer.id))) or 0
    at, i, last_round = replay.start, 0, replay.start
    while at < replay.end:
        hour_end = min(at + timedelta(hours=1), replay.end)
        j = i
        while j < len(held) and held[j]["timestamp"] < hour_end:
            j += 1
        if j > i:
            write_group(session_factory, held[i:j], stats, currency=settings.default_currency,
                        region=settings.default_region)
            with session_factory() as session:
                for_writing(session)
                grant_consents(session, seed, after_id=last_customer)
                last_customer = session.scalar(sa.select(sa.func.max(Customer.id))) or last_customer
                session.commit()
        ingested = j > i
        replay.messages += j - i
        i = j
        # A quiet hour (nothing arrived, nothing due) needs no round; one runs at least every 6 hours so the
        # daily sweeps (dates, "at risk") keep their day.
        if ingested or hour_end - last_round >= timedelta(hours=6) or _due_before(session_factory, hour_end):
            worker.run_round(hour_end)
            ran, sent = run_jobs(session_factory, hour_end, replay.end, settings.timezone, seed, registry)
            replay.steps += ran
            replay.sent += sent
            last_round = hour_end
        replay.hours += 1
        at = hour_end
        if on_hour:
            replay.seconds = time.perf_counter() - started
            on_hour(replay)
    # Steps due at the end itself (a wait until a time of day that falls on it) run too: the demo ends
    # with nothing overdue.
    ran, sent = run_jobs(session_factory, replay.end, replay.end, settings.timezone, seed, registry)
    replay.steps += ran
    replay.sent += sent
    replay.seconds = time.perf_counter() - started
    return replay


def _due_before(session_factory: sessionmaker[Session], when: datetime) -> bool:
    from clm.jobs.models import WAITING, Job

    with session_factory() as session:
        return session.scalar(sa.select(sa.exists().where(Job.state.in_(WAITING), Job.scheduled_at < when))) is True


def report(session_factory: sessionmaker[Session]) -> list[str]:
    """One line per journey: entered, converted, messages handed over and opened."""
    from clm.channels.models import Message
    from clm.journeys import service

    lines = []
    with session_factory() as session:
        for journey in service.list_journeys(session):
            counts = service.summary(session, journey.id)
            m = Message.__table__.c
            sent, opened, suppressed = session.execute(sa.select(
                sa.func.count().filter(m.sent_at.is_not(None)),
                sa.func.count().filter(m.status.in_(("opened", "clicked", "replied"))),
                sa.func.count().filter(m.status == "suppressed")).where(m.journey_id == journey.id)).one()
            lines.append(f"{journey.name}: {counts['entered']:,} entered, {counts['converted']:,} converted, "
                         f"{sent:,} messages sent, {opened:,} opened, {suppressed:,} suppressed")
    return lines
