"""The job queue: enqueue, claim, complete, unique jobs, due times, backoff, dead jobs and retries."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from clm.jobs import queue
from clm.jobs.models import Job
from clm.lib.errors import FieldError

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def claim(db, now=NOW, worker="w1", limit=10, **kw):
    claimed = queue.claim(db, worker, limit=limit, now=now, **kw)
    db.commit()
    return claimed


def state(db, job_id):
    db.expire_all()
    return db.get(Job, job_id)


def test_an_enqueued_job_is_claimed_with_a_lease_and_completed(db):
    job = queue.enqueue(db, "welcome", {"customer_id": 7}, now=NOW)
    db.commit()
    [claimed] = claim(db, lease_seconds=60)
    assert (claimed.id, claimed.kind, claimed.args, claimed.attempt) == (job.id, "welcome", {"customer_id": 7}, 1)
    assert claimed.lease_expires_at == NOW + timedelta(seconds=60)
    assert claim(db) == []  # running: nobody else gets it
    assert queue.complete(db, claimed, NOW)
    db.commit()
    done = state(db, job.id)
    assert (done.state, done.completed_at, done.locked_by) == ("completed", NOW, "w1")


def test_jobs_are_claimed_by_priority_then_due_time_and_only_from_the_asked_queues(db):
    late = queue.enqueue(db, "k", run_at=NOW - timedelta(minutes=1), now=NOW)
    early = queue.enqueue(db, "k", run_at=NOW - timedelta(minutes=5), now=NOW)
    urgent = queue.enqueue(db, "k", priority=-1, now=NOW)
    other = queue.enqueue(db, "k", queue="email", now=NOW)
    db.commit()
    assert [j.id for j in queue.claim(db, "w", limit=2, now=NOW)] == sorted([urgent.id, early.id])
    assert [j.id for j in queue.claim(db, "w", limit=5, now=NOW)] == [late.id]
    assert [j.id for j in queue.claim(db, "w", queues=["email"], now=NOW)] == [other.id]


def test_a_job_due_in_the_future_is_not_claimed_until_its_time_comes(db):
    job = queue.enqueue(db, "wait", run_at=NOW + timedelta(days=30), now=NOW)
    db.commit()
    assert claim(db, now=NOW) == []
    assert claim(db, now=NOW + timedelta(days=30) - timedelta(seconds=1)) == []
    assert [j.id for j in claim(db, now=NOW + timedelta(days=30))] == [job.id]


def test_a_unique_job_is_enqueued_once_while_it_is_unfinished(db):
    first = queue.enqueue(db, "welcome", {"n": 1}, unique_key="welcome:7", now=NOW)
    again = queue.enqueue(db, "welcome", {"n": 2}, unique_key="welcome:7", now=NOW)
    db.commit()
    assert again.id == first.id
    assert db.scalar(sa.select(sa.func.count()).select_from(Job)) == 1
    [claimed] = claim(db)
    assert queue.enqueue(db, "welcome", unique_key="welcome:7", now=NOW).id == first.id  # running counts
    queue.complete(db, claimed, NOW)
    db.commit()
    later = queue.enqueue(db, "welcome", unique_key="welcome:7", now=NOW)
    assert later.id != first.id  # finished: the key is free again


def test_enqueue_many_adds_every_job_and_skips_taken_unique_keys(db):
    assert queue.enqueue_many(db, "step", [{"c": i} for i in range(50)], now=NOW) == 50
    queue.enqueue(db, "once", unique_key="k1", now=NOW)
    added = queue.enqueue_many(db, "once", [{}, {}, {}], unique_keys=["k1", "k2", "k2"], now=NOW)
    db.commit()
    assert added == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Job)) == 52
    assert sorted(j.args["c"] for j in claim(db, limit=100) if j.kind == "step") == list(range(50))


def test_bad_input_is_refused_naming_the_field(db):
    with pytest.raises(FieldError, match="max_attempts"):
        queue.enqueue(db, "k", max_attempts=0)
    with pytest.raises(FieldError, match="run_at"):
        queue.enqueue(db, "k", run_at=datetime(2025, 1, 1))  # noqa: DTZ001 - naive on purpose
    with pytest.raises(FieldError, match="args"):
        queue.enqueue_many(db, "k", [["not", "a", "dict"]])


def test_backoff_doubles_from_15_seconds_with_at_most_ten_percent_jitter_and_is_fixed_by_a_seed():
    delays = [queue.backoff(a, random.Random(1)) for a in range(1, 6)]
    for attempt, delay in enumerate(delays, start=1):
        assert 15 * 2 ** (attempt - 1) <= delay <= 1.1 * 15 * 2 ** (attempt - 1)
    assert delays == [queue.backoff(a, random.Random(1)) for a in range(1, 6)]
    assert queue.backoff(40, random.Random(1)) <= 1.1 * 24 * 3600


def test_a_failed_job_retries_after_its_backoff_and_dies_after_max_attempts_with_every_error_kept(db):
    job = queue.enqueue(db, "flaky", max_attempts=3, now=NOW)
    db.commit()
    now = NOW
    for attempt in (1, 2):
        [claimed] = claim(db, now=now)
        assert claimed.attempt == attempt
        assert queue.fail(db, claimed, f"timeout {attempt}", now=now, rng=random.Random(0)) == "retryable"
        db.commit()
        due = state(db, job.id).scheduled_at
        assert due == now + timedelta(seconds=queue.backoff(attempt, random.Random(0)))
        assert claim(db, now=due - timedelta(seconds=1)) == []
        now = due
    [claimed] = claim(db, now=now)
    assert queue.fail(db, claimed, "timeout 3", now=now) == "dead"
    db.commit()
    dead = state(db, job.id)
    assert dead.state == "dead"
    assert [(e["attempt"], e["error"]) for e in dead.errors] == [(1, "timeout 1"), (2, "timeout 2"), (3, "timeout 3")]
    assert claim(db, now=now + timedelta(days=365)) == []


def test_a_permanent_failure_parks_the_job_at_once(db):
    job = queue.enqueue(db, "k", now=NOW)
    db.commit()
    [claimed] = claim(db)
    assert queue.fail(db, claimed, "customer deleted", permanent=True, now=NOW) == "dead"
    db.commit()
    assert state(db, job.id).attempt == 1


def test_a_person_retries_a_dead_job_and_it_runs_again_with_its_history(db):
    job = queue.enqueue(db, "k", max_attempts=1, now=NOW)
    db.commit()
    [claimed] = claim(db)
    queue.fail(db, claimed, "smtp down", now=NOW)
    db.commit()
    later = NOW + timedelta(hours=2)
    queue.retry_dead(db, job.id, now=later)
    db.commit()
    [again] = claim(db, now=later)
    assert again.attempt == 2
    assert queue.complete(db, again, later)
    db.commit()
    done = state(db, job.id)
    assert done.state == "completed"
    assert [e["error"] for e in done.errors] == ["smtp down"]


def test_only_dead_or_cancelled_jobs_can_be_retried(db):
    job = queue.enqueue(db, "k", now=NOW)
    db.commit()
    with pytest.raises(FieldError, match="available"):
        queue.retry_dead(db, job.id)


def test_a_cancelled_job_is_not_claimed_and_its_running_worker_cannot_complete_it(db):
    waiting = queue.enqueue(db, "k", run_at=NOW + timedelta(hours=1), now=NOW)
    running = queue.enqueue(db, "k", now=NOW)
    db.commit()
    [claimed] = claim(db)
    queue.cancel(db, waiting.id, NOW)
    queue.cancel(db, running.id, NOW)
    db.commit()
    assert claim(db, now=NOW + timedelta(days=1)) == []
    assert not queue.complete(db, claimed, NOW)


def test_a_job_whose_worker_vanished_is_reclaimed_when_its_lease_expires(db):
    job = queue.enqueue(db, "k", now=NOW)
    db.commit()
    [lost] = claim(db, worker="dead-worker", lease_seconds=60)
    assert claim(db, worker="w2", now=NOW + timedelta(seconds=59)) == []
    [again] = claim(db, worker="w2", now=NOW + timedelta(seconds=60))
    assert (again.id, again.attempt, again.locked_by) == (job.id, 2, "w2")
    assert "dead-worker" in state(db, job.id).errors[0]["error"]
    assert not queue.complete(db, lost, NOW)  # the vanished worker, back late, cannot finish it
    assert queue.fail(db, lost, "late", now=NOW) is None
    assert queue.complete(db, again, NOW)


def test_a_heartbeat_extends_the_lease_of_a_long_job(db):
    queue.enqueue(db, "long", now=NOW)
    db.commit()
    [claimed] = claim(db, lease_seconds=60)
    renewed = queue.extend_lease(db, claimed, 600, now=NOW + timedelta(seconds=50))
    db.commit()
    assert renewed.lease_expires_at == NOW + timedelta(seconds=650)
    assert claim(db, worker="w2", now=NOW + timedelta(seconds=120)) == []
    assert queue.complete(db, renewed, NOW)


def test_a_job_whose_lease_expires_on_its_last_attempt_is_dead(db):
    job = queue.enqueue(db, "k", max_attempts=1, now=NOW)
    db.commit()
    claim(db, lease_seconds=10)
    assert claim(db, now=NOW + timedelta(seconds=10)) == []
    assert state(db, job.id).state == "dead"


def test_stats_count_jobs_by_queue_and_state_and_prune_removes_old_finished_ones(db):
    queue.enqueue(db, "k", now=NOW)
    queue.enqueue(db, "k", now=NOW)
    db.commit()
    [first] = claim(db, limit=1)
    queue.complete(db, first, NOW)
    db.commit()
    assert queue.stats(db) == {("default", "available"): 1, ("default", "completed"): 1}
    assert queue.prune(db, before=NOW) == 0
    assert queue.prune(db, before=NOW + timedelta(days=1)) == 1


def test_unique_jobs_keep_working_once_the_driver_prepares_the_statement(db):
    # psycopg prepares a statement on its 5th execution; the partial index must still be matched.
    ids = [queue.enqueue(db, "k", unique_key=f"key-{n % 8}", now=NOW).id for n in range(16)]
    db.commit()
    assert ids[:8] == ids[8:] and len(set(ids)) == 8
