"""Real worker processes: a wait survives a restart; a SIGKILLed worker loses no step and repeats no
effect; two workers on PostgreSQL never run the same step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from clm.customers.models import Customer
from clm.db.engine import make_engine, make_session_factory
from clm.journeys import service
from tests.conftest import POSTGRES_URL, fresh_engine
from tests.journeys.conftest import END, graph, trait, wait

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 3, 2, 0, tzinfo=UTC)
CUSTOMERS = 120  # two actions and an exit each

WORKER = """
import sys, time
from contextlib import nullcontext
from datetime import datetime
import sqlalchemy as sa
import time_machine
from clm.config import Settings
from clm.db.engine import make_engine, make_session_factory
from clm.jobs.registry import build_registry
from clm.jobs.runner import run_due
from clm.journeys import actions

url, name, mode, clock = sys.argv[1:5]
engine = make_engine(url)
if mode == "loop":
    log = make_engine(url, isolation_level="AUTOCOMMIT")  # every attempt, even one rolled back
    original = actions.act

    def act(session, run, node, now, timezone, job_id):
        with log.connect() as conn:
            conn.execute(sa.text("INSERT INTO journey_test_attempts (run_id, seq, worker) VALUES (:r, :s, :w)"),
                         {"r": run.id, "s": run.seq, "w": name})
        session.execute(sa.text("SELECT pg_sleep(0.003)"))
        session.execute(sa.text("INSERT INTO journey_test_runs (run_id, seq, worker) VALUES (:r, :s, :w)"),
                        {"r": run.id, "s": run.seq, "w": name})
        return original(session, run, node, now, timezone, job_id)

    actions.act = act
registry = build_registry(Settings(database_url=url, _env_file=None))
factory = make_session_factory(engine)
with time_machine.travel(datetime.fromisoformat(clock), tick=False) if clock != "-" else nullcontext():
    if mode == "once":
        while run_due(factory, registry, name):
            pass
    else:
        while True:
            if not run_due(factory, registry, name, limit=20, lease_seconds=float(sys.argv[5])):
                time.sleep(0.05)  # idle poll
"""


def worker(url: str, name: str, mode: str, clock: datetime | None = None, lease: float = 300) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", WORKER, url, name, mode, clock.isoformat() if clock else "-",
                             str(lease)], cwd=ROOT, env=env)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(
    not POSTGRES_URL, reason="CLM_TEST_POSTGRES_URL is not set"))])
def committed_db(request, tmp_path):
    """A database the test commits to for real (several processes read it), emptied afterwards."""
    if request.param == "sqlite":
        engine = fresh_engine("sqlite", tmp_path)
        url = str(engine.url)
    else:
        url, engine = POSTGRES_URL, make_engine(POSTGRES_URL)
        _truncate(engine)
    yield url, engine
    if request.param == "postgres":
        _truncate(engine)
    engine.dispose()


def _truncate(engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS journey_test_runs, journey_test_attempts")
        conn.exec_driver_sql("TRUNCATE journeys, customers, jobs, job_effects, outbox, outbox_cursors CASCADE")


def _setup(engine, definition: dict, customers: int, at: datetime) -> tuple[int, list[int]]:
    factory = make_session_factory(engine)
    with time_machine.travel(at, tick=False), factory() as session:
        ids = []
        for k in range(customers):
            c = Customer(full_name=f"Khách {k}", traits={}, search_text="")
            session.add(c)
            session.flush()
            ids.append(c.id)
        journey = service.save_journey(session, name="Bền", definition=definition)
        service.activate(session, journey.id)
        for cid in ids:
            service.trigger(session, journey.id, cid, None, {})
        session.commit()
        return journey.id, ids


def _scalar(engine, sql: str):
    with engine.connect() as conn:
        return conn.exec_driver_sql(sql).scalar()


def test_a_wait_survives_a_restart_of_the_worker(committed_db):
    url, engine = committed_db
    journey, [anna] = _setup(engine, graph(trait("hello", "started", True, "w"), wait("w", "t", days=1),
                                           trait("t", "done", True), END), 1, T0)
    assert worker(url, "first", "once", T0).wait(60) == 0
    assert _scalar(engine, "SELECT status || ':' || node_id FROM journey_runs") == "waiting:w"
    assert worker(url, "second", "once", T0 + timedelta(hours=23)).wait(60) == 0
    assert _scalar(engine, "SELECT status FROM journey_runs") == "waiting"
    assert worker(url, "third", "once", T0 + timedelta(days=1, minutes=1)).wait(60) == 0
    assert _scalar(engine, "SELECT status FROM journey_runs") == "completed"
    with engine.connect() as conn:
        traits = conn.execute(sa.select(Customer.traits).where(Customer.id == anna)).scalar()
    assert traits == {"started": True, "done": True}


def _wait_for(check, timeout: float) -> bool:
    """Poll for a result (not a sleep for time to pass): True once `check()` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _race(url, engine, names: list[str], kill: str | None, lease: float) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE journey_test_runs (run_id BIGINT, seq INT, worker TEXT)")
        conn.exec_driver_sql("CREATE TABLE journey_test_attempts (run_id BIGINT, seq INT, worker TEXT)")
    flow = graph(trait("a", "a", 1, "b"), trait("b", "b", 2), END)
    _setup(engine, flow, CUSTOMERS, datetime.now(UTC))
    procs = {n: worker(url, n, "loop", lease=lease) for n in names}
    try:
        if kill:
            assert _wait_for(lambda: _scalar(engine, f"SELECT count(*) FROM jobs WHERE state = 'running' "
                                                     f"AND locked_by = '{kill}'") > 0, 30)
            procs[kill].send_signal(signal.SIGKILL)
            procs[kill].wait(5)
        assert _wait_for(lambda: _scalar(engine, "SELECT count(*) FROM journey_runs WHERE status = 'completed'")
                         == CUSTOMERS, 90)
    finally:
        for p in procs.values():
            p.kill()
            p.wait(5)


postgres_only = pytest.mark.skipif(not POSTGRES_URL, reason="CLM_TEST_POSTGRES_URL is not set")


@postgres_only
@pytest.mark.parametrize("committed_db", ["postgres"], indirect=True)
def test_a_worker_killed_mid_batch_loses_no_step_and_repeats_no_effect(committed_db):
    url, engine = committed_db
    _race(url, engine, ["doomed", "survivor"], kill="doomed", lease=2)
    assert _scalar(engine, "SELECT count(*) FROM journey_test_runs") == 2 * CUSTOMERS
    assert _scalar(engine, "SELECT count(*) FROM (SELECT DISTINCT run_id, seq FROM journey_test_runs) s") == 2 * CUSTOMERS
    assert _scalar(engine, "SELECT count(*) FROM job_effects WHERE key LIKE 'journey:%%'") == 2 * CUSTOMERS
    assert _scalar(engine, "SELECT count(*) FROM journey_steps") == 3 * CUSTOMERS  # a, b, exit
    assert _scalar(engine, "SELECT count(*) FROM customers WHERE traits = '{\"a\": 1, \"b\": 2}'::jsonb") == CUSTOMERS
    assert _scalar(engine, "SELECT count(*) FROM jobs WHERE attempt > 1") > 0  # the dead worker's were reclaimed


@postgres_only
@pytest.mark.parametrize("committed_db", ["postgres"], indirect=True)
def test_two_workers_on_postgres_never_run_the_same_step(committed_db):
    url, engine = committed_db
    _race(url, engine, ["left", "right"], kill=None, lease=300)
    # Every attempt is logged outside the transaction: each step was attempted once, by one worker.
    assert _scalar(engine, "SELECT count(*) FROM journey_test_attempts") == 2 * CUSTOMERS
    assert _scalar(engine, "SELECT count(*) FROM (SELECT DISTINCT run_id, seq FROM journey_test_attempts) s") == (
        2 * CUSTOMERS)
    assert _scalar(engine, "SELECT count(DISTINCT worker) FROM journey_test_attempts") == 2
