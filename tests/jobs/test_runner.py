"""run_due: each job in its own transaction, failures recorded and isolated, effects happen once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from clm.customers.models import Customer
from clm.jobs import queue
from clm.jobs.effects import effect_done, record_effect
from clm.jobs.models import Job, JobEffect
from clm.jobs.registry import build_registry
from clm.jobs.runner import JobError, Registry, run_due

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def jobs_by_state(db) -> dict[int, str]:
    db.expire_all()
    return {j.id: j.state for j in db.scalars(sa.select(Job))}


def test_one_failing_job_never_stops_the_others_and_its_writes_are_rolled_back(db, session_factory):
    def handle(session, job):
        session.add(Customer(full_name=f"from job {job.args['n']}"))
        session.flush()
        if job.args["n"] == 2:
            raise RuntimeError("provider timeout")

    registry = Registry()
    registry.register("make", handle)
    ids = [queue.enqueue(db, "make", {"n": n}, now=NOW).id for n in range(4)]
    db.commit()
    assert run_due(session_factory, registry, "w", now=NOW, rng=random.Random(0)) == 4
    states = jobs_by_state(db)
    assert [states[i] for i in ids] == ["completed", "completed", "retryable", "completed"]
    names = set(db.scalars(sa.select(Customer.full_name)))
    assert names == {"from job 0", "from job 1", "from job 3"}
    failed = db.get(Job, ids[2])
    assert failed.errors[0]["error"] == "RuntimeError: provider timeout"
    assert failed.scheduled_at == NOW + timedelta(seconds=queue.backoff(1, random.Random(0)))


def test_a_permanent_job_error_and_an_unknown_kind_park_the_job_dead(db, session_factory):
    registry = Registry()

    def refuse(session, job):
        raise JobError("customer 9 was deleted", permanent=True)

    registry.register("refuse", refuse)
    refused = queue.enqueue(db, "refuse", now=NOW)
    unknown = queue.enqueue(db, "nobody.handles.this", now=NOW)
    db.commit()
    run_due(session_factory, registry, "w", now=NOW)
    db.expire_all()
    assert db.get(Job, refused.id).errors[0]["error"] == "customer 9 was deleted"
    assert db.get(Job, refused.id).state == "dead"
    assert "nobody.handles.this" in db.get(Job, unknown.id).errors[0]["error"]


def test_nothing_due_means_no_work(db, session_factory):
    queue.enqueue(db, "later", run_at=NOW + timedelta(days=3), now=NOW)
    db.commit()
    assert run_due(session_factory, Registry(), "w", now=NOW) == 0


def test_an_effect_recorded_before_a_crash_is_not_repeated_when_the_job_is_retried(db, session_factory):
    sent: list[int] = []
    attempts: list[int] = []

    def send_welcome(session, job):
        attempts.append(job.attempt)
        if record_effect(session, f"welcome-email:{job.args['customer_id']}", job.id):
            sent.append(job.args["customer_id"])
            session.commit()  # the effect is durable...
        if job.attempt == 1:
            raise RuntimeError("worker crashed before completing")  # ...but the job is not completed

    registry = Registry()
    registry.register("welcome", send_welcome)
    job = queue.enqueue(db, "welcome", {"customer_id": 42}, now=NOW)
    db.commit()
    run_due(session_factory, registry, "w", now=NOW)
    assert jobs_by_state(db)[job.id] == "retryable"
    run_due(session_factory, registry, "w", now=NOW + timedelta(hours=1))
    assert jobs_by_state(db)[job.id] == "completed"
    assert attempts == [1, 2]
    assert sent == [42]
    assert effect_done(db, "welcome-email:42")
    assert db.scalar(sa.select(sa.func.count()).select_from(JobEffect)) == 1


def test_a_handler_kind_cannot_be_registered_twice_and_the_product_registry_builds(settings):
    registry = Registry()
    registry.register("k", lambda s, j: None)
    with pytest.raises(ValueError, match="twice"):
        registry.register("k", lambda s, j: None)
    assert isinstance(build_registry(settings), Registry)


def test_the_worker_runs_due_jobs_each_round(db, session_factory, settings, monkeypatch):
    from clm.jobs import registry as product
    from clm.worker.loop import Worker
    from clm.worker.steps import build_steps

    ran = []

    def registry_with_a_kind(_settings):
        registry = Registry()
        registry.register("ping", lambda session, job: ran.append(job.args["n"]))
        return registry

    monkeypatch.setattr(product, "build_registry", registry_with_a_kind)
    worker = Worker(session_factory, build_steps(settings))
    queue.enqueue(db, "ping", {"n": 1}, now=NOW)
    db.commit()
    step = next(s for s in worker.steps if s.name == "jobs.run")
    assert worker.run_step(step, now=NOW) == 1
    assert ran == [1]


def test_a_job_whose_worker_died_on_its_last_attempt_is_parked_dead_with_its_kinds_hook(db, session_factory):
    parked = []

    def on_dead(session, job, error):
        session.add(Customer(full_name=f"parked {job.kind} {job.id}"))
        parked.append((job.id, job.attempt, error))

    def broken_hook(session, job, error):
        session.add(Customer(full_name="half-written"))
        session.flush()
        raise RuntimeError("hook bug")

    registry = Registry()
    registry.register("last", lambda session, job: None, on_dead=on_dead)
    registry.register("retried", lambda session, job: None, on_dead=on_dead)
    registry.register("buggy", lambda session, job: None, on_dead=broken_hook)
    last = queue.enqueue(db, "last", max_attempts=1, now=NOW)
    retried = queue.enqueue(db, "retried", max_attempts=2, now=NOW)
    buggy = queue.enqueue(db, "buggy", max_attempts=1, now=NOW)
    queue.claim(db, "gone", limit=10, lease_seconds=60, now=NOW)  # then the worker is SIGKILLed
    db.commit()
    later = NOW + timedelta(minutes=5)
    assert run_due(session_factory, registry, "w", now=later) == 1  # only `retried` had an attempt left
    states = jobs_by_state(db)
    assert states == {last.id: "dead", retried.id: "completed", buggy.id: "dead"}
    assert parked == [(last.id, 1, "lease expired: worker gone stopped before finishing")]
    assert list(db.scalars(sa.select(Customer.full_name))) == [f"parked last {last.id}"]  # the buggy hook's write undone
