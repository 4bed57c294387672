"""Batchable kinds: one transaction for the batch, a savepoint per job, one completing UPDATE."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import sqlalchemy as sa

from clm.customers.models import Customer
from clm.jobs import queue
from clm.jobs.models import Job
from clm.jobs.runner import JobError, Registry, claim_due, run_batch, run_due

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def states(db) -> dict[int, str]:
    db.expire_all()
    return {j.id: j.state for j in db.scalars(sa.select(Job))}


def make_customers(fail_on: int | None = None) -> Registry:
    def handle(session, job):
        session.add(Customer(full_name=f"from job {job.args['n']}"))
        session.flush()
        if job.args["n"] == fail_on:
            raise RuntimeError("provider timeout")

    registry = Registry()
    registry.register("make", handle, batchable=True)
    return registry


def names(db) -> list[str]:
    return sorted(db.scalars(sa.select(Customer.full_name)))


def test_a_batch_completes_its_jobs_together_and_a_failing_job_only_loses_its_own_writes(db, session_factory):
    ids = [queue.enqueue(db, "make", {"n": n}, now=NOW).id for n in range(5)]
    db.commit()
    assert run_due(session_factory, make_customers(fail_on=3), "w", now=NOW, rng=random.Random(0)) == 5
    by_id = states(db)
    assert [by_id[i] for i in ids] == ["completed", "completed", "completed", "retryable", "completed"]
    assert names(db) == ["from job 0", "from job 1", "from job 2", "from job 4"]
    assert db.get(Job, ids[3]).errors[0]["error"] == "RuntimeError: provider timeout"


def test_when_a_job_of_the_batch_was_taken_over_the_batch_is_rolled_back_and_rerun_job_by_job(db, session_factory):
    ids = [queue.enqueue(db, "make", {"n": n}, now=NOW).id for n in range(3)]
    db.commit()
    claimed = claim_due(session_factory, "w", ["default"], 10, 300, NOW)
    # Worker w stalls; its lease on job 1 expires and another worker takes that job over.
    db.execute(sa.update(Job).where(Job.id == ids[1]).values(locked_by="other", attempt=Job.attempt + 1))
    db.commit()
    result = run_batch(session_factory, make_customers(), claimed, NOW)
    assert result == {ids[0]: "completed", ids[1]: "lost", ids[2]: "completed"}
    assert names(db) == ["from job 0", "from job 2"]  # each effect once; none from the lost job
    by_id = states(db)
    assert by_id[ids[1]] == "running" and db.get(Job, ids[1]).locked_by == "other"


def test_batchable_and_one_by_one_kinds_run_in_the_same_round(db, session_factory):
    registry = make_customers()
    seen = []
    registry.register("solo", lambda session, job: seen.append(job.id))
    solo = queue.enqueue(db, "solo", now=NOW)
    batched = queue.enqueue(db, "make", {"n": 1}, now=NOW)
    db.commit()
    assert run_due(session_factory, registry, "w", now=NOW) == 2
    assert seen == [solo.id]
    assert states(db) == {solo.id: "completed", batched.id: "completed"}


def test_a_job_parked_dead_calls_its_kinds_hook_in_the_same_transaction(db, session_factory):
    parked = []

    def refuse(session, job):
        raise JobError("template missing", permanent=True)

    def on_dead(session, job, error):
        session.add(Customer(full_name=f"parked {job.id}: {error}"))
        parked.append(job.id)

    registry = Registry()
    registry.register("refuse", refuse, batchable=True, on_dead=on_dead)
    job = queue.enqueue(db, "refuse", now=NOW)
    db.commit()
    run_due(session_factory, registry, "w", now=NOW)
    assert parked == [job.id]
    assert states(db)[job.id] == "dead"
    assert names(db) == [f"parked {job.id}: template missing"]
