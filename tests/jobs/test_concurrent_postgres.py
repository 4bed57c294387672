"""PostgreSQL: concurrent workers (threads, then killed processes) run every job exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from clm.db.engine import make_session_factory
from clm.jobs import queue
from clm.jobs.effects import record_effect
from clm.jobs.runner import Registry, run_due
from tests.conftest import POSTGRES_URL

pytestmark = [pytest.mark.skipif(not POSTGRES_URL, reason="CLM_TEST_POSTGRES_URL is not set"),
              pytest.mark.parametrize("engine", ["postgres"], indirect=True)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def committed(engine):
    """These tests commit for real (several connections); they leave the tables empty again."""
    def clean():
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM jobs; DELETE FROM job_effects; DROP TABLE IF EXISTS job_test_runs")
    clean()
    yield make_session_factory(engine)
    clean()


def _race(session_factory, jobs: int) -> dict[str, list[int]]:
    """Two threads run `jobs` jobs with run_due until none is left; the jobs each one ran."""
    with session_factory() as session:
        queue.enqueue_many(session, "count", [{} for _ in range(jobs)])
        session.commit()
    runs: dict[str, list[int]] = {"a": [], "b": []}
    registry = Registry()
    registry.register("count", lambda session, job: runs[job.locked_by].append(job.id))
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        barrier.wait()
        while run_due(session_factory, registry, name, limit=7):
            pass

    threads = [threading.Thread(target=work, args=(n,)) for n in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return runs


def test_two_workers_claiming_at_once_never_get_the_same_job(committed):
    for _ in range(5):
        runs = _race(committed, 200)
        assert not set(runs["a"]) & set(runs["b"])
        assert len(runs["a"]) + len(runs["b"]) == 200
        assert runs["a"] and runs["b"]  # both took part
        with committed() as session:
            assert queue.stats(session) == {("default", "completed"): 200}
            session.execute(sa.text("DELETE FROM jobs"))
            session.commit()


WORKER = """
import sys, time
import sqlalchemy as sa
from clm.db.engine import make_engine, make_session_factory
from clm.jobs.effects import record_effect
from clm.jobs.runner import Registry, run_due

def handle(session, job):
    session.execute(sa.text("SELECT pg_sleep(0.004)"))
    if record_effect(session, f"proc:{job.id}", job.id):
        session.execute(sa.text("INSERT INTO job_test_runs (job_id, worker) VALUES (:j, :w)"),
                        {"j": job.id, "w": job.locked_by})

registry = Registry()
registry.register("proc", handle, batchable=sys.argv[3] == "batch")
factory = make_session_factory(make_engine(sys.argv[1]))
while True:
    if not run_due(factory, registry, sys.argv[2], limit=20, lease_seconds=2):
        time.sleep(0.05)  # idle poll
"""


def _wait_for(check, timeout: float) -> bool:
    """Poll for a result (not a sleep for time to pass): True once `check()` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("mode", ["one-by-one", "batch"])
def test_a_worker_killed_mid_batch_loses_no_job_and_repeats_no_effect(committed, engine, mode):
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE job_test_runs (job_id BIGINT NOT NULL, worker TEXT NOT NULL)")
    with committed() as session:
        queue.enqueue_many(session, "proc", [{"n": n} for n in range(500)])
        session.commit()

    def scalar(sql: str):
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {name: subprocess.Popen([sys.executable, "-c", WORKER, POSTGRES_URL, name, mode], cwd=ROOT, env=env)
             for name in ("doomed", "survivor")}
    try:
        assert _wait_for(lambda: scalar("SELECT count(*) FROM jobs WHERE state = 'running' "
                                        "AND locked_by = 'doomed'") > 0, 15)
        procs["doomed"].send_signal(signal.SIGKILL)
        procs["doomed"].wait(5)
        assert _wait_for(lambda: scalar("SELECT count(*) FROM jobs WHERE state = 'completed'") == 500, 20)
    finally:
        for p in procs.values():
            p.kill()
            p.wait(5)
    assert scalar("SELECT count(*) FROM job_test_runs") == 500
    assert scalar("SELECT count(DISTINCT job_id) FROM job_test_runs") == 500
    assert scalar("SELECT count(*) FROM job_effects WHERE key LIKE 'proc:%%'") == 500
    assert scalar("SELECT count(*) FROM jobs WHERE attempt > 1") > 0  # the dead worker's jobs were reclaimed
    with engine.connect() as conn:
        workers = Counter(w for (w,) in conn.exec_driver_sql("SELECT worker FROM job_test_runs"))
    assert workers["survivor"] > 0


def test_effects_with_one_key_happen_once_across_concurrent_transactions(committed):
    with committed() as first, committed() as second:
        assert record_effect(first, "once")
        results = []
        t = threading.Thread(target=lambda: results.append(record_effect(second, "once")))
        t.start()  # waits on the first transaction's key
        first.commit()
        t.join(10)
        second.commit()
    assert results == [False]
