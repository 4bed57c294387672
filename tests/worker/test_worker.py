"""The worker's steps: a round applies new facts, the sweep runs on its interval, a step is claimed once."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.customers.models import Customer
from clm.outbox.models import OutboxCursor
from clm.worker.loop import Worker
from clm.worker.steps import Step, build_steps, claim
from tests.conftest import POSTGRES_URL
from tests.lifecycle.life import Life, day


@pytest.fixture
def worker(session_factory, settings) -> Worker:
    return Worker(session_factory, build_steps(settings), poll_seconds=0.01)


def test_a_round_moves_a_customer_whose_order_just_arrived(db, worker):
    life = Life(db)
    life.identify("an", 0)
    life.order("an", 1)
    assert worker.run_round(now=day(1)) > 0
    assert life.stage("an") == "conversion"
    assert worker.run_round(now=day(1)) == 0


def test_the_sweep_runs_once_per_interval_whichever_round_asks(db, worker, settings):
    life = Life(db)
    life.identify("an", 0)
    life.order("an", 0)
    worker.run_round(now=day(0))
    sweep = next(s for s in worker.steps if s.name == "lifecycle.sweep")
    assert worker.run_step(sweep, now=day(300)) == 1  # churned
    life.order("an", 300)
    worker.run_round(now=day(300))
    assert life.stage("an") == "retention"
    assert worker.run_step(sweep, now=day(300) + timedelta(minutes=settings.lifecycle_sweep_minutes - 1)) == 0
    db.execute(sa.update(Customer).values(lifecycle_stage="awareness"))
    db.commit()
    assert worker.run_step(sweep, now=day(300) + timedelta(minutes=settings.lifecycle_sweep_minutes)) == 1


def test_a_failing_step_is_rolled_back_and_the_round_goes_on(db, session_factory):
    def broken(session, now):
        session.execute(sa.insert(Customer.__table__).values(full_name="half-written"))
        raise RuntimeError("boom")

    ran = []
    worker = Worker(session_factory, [Step("broken", broken), Step("fine", lambda s, now: ran.append(now) or 1)])
    assert worker.run_round(now=day(0)) == 1
    assert ran == [day(0)]
    assert db.scalar(sa.select(sa.func.count()).where(Customer.full_name == "half-written")) == 0


def test_stop_ends_the_loop_after_the_current_round(session_factory):
    rounds = []
    worker = Worker(session_factory, [], poll_seconds=0.01)
    worker.steps = [Step("count", lambda s, now: rounds.append(1) or (worker.stop() or 0))]
    worker.run_forever()
    assert rounds == [1]


@pytest.mark.skipif(not POSTGRES_URL, reason="CLM_TEST_POSTGRES_URL is not set")
@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_two_workers_never_hold_the_same_step_on_postgresql(engine):
    step = Step("test.claim", lambda s, now: 0)
    try:
        with sa.orm.Session(engine) as first, sa.orm.Session(engine) as second:
            assert claim(first, step, day(0))
            first.commit()  # the row exists now
            assert claim(first, step, day(0))
            assert not claim(second, step, day(0))  # SKIP LOCKED: another worker has it
            first.commit()
            assert claim(second, step, day(0))
            second.commit()
    finally:
        with engine.begin() as conn:
            conn.execute(sa.delete(OutboxCursor.__table__).where(OutboxCursor.consumer == "test.claim"))
