"""Moving runs through their graph: arriving at a node, running a due step, ending a run.

Arriving at a node bumps the run's `seq` and queues a `journey.step` job carrying it: due now for
actions and splits, at the end of the wait for a wait, at the timeout for a wait for an event. The job
runs the node (`run_step`): the wait is over, the action happens, the split picks a branch; then the
run arrives at the next node, all in the job's transaction. An action's effect is recorded under the
key `journey:<run>:<seq>` (clm.jobs.effects), which a retried or repeated step finds taken.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from clm.jobs import queue
from clm.journeys import definition as d
from clm.journeys import models as m
from clm.journeys.models import Journey, JourneyRun, JourneyStep, JourneyVersion

STEP_KIND = "journey.step"
STEP_ATTEMPTS = 5  # a failing action is retried this many times (backoff 15 s doubling), then parked


@lru_cache(maxsize=512)
def _parsed(version_id: int, text: str) -> d.Definition:
    import orjson

    return d.Definition.model_validate(orjson.loads(text))


def graph_of(session: Session, version_id: int) -> d.Definition:
    """The version's graph (parsed once per process: a published version never changes)."""
    import orjson

    definition = session.scalar(sa.select(JourneyVersion.definition).where(JourneyVersion.id == version_id))
    return _parsed(version_id, orjson.dumps(definition, option=orjson.OPT_SORT_KEYS).decode())


def next_time_of_day(now: datetime, at: str, weekdays: list[int], timezone: str) -> datetime:
    """The first instant at or after `now` when the business clock shows `at` ("HH:MM") on one of
    `weekdays` (0 Monday; empty: any day), in UTC."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    hour, minute = (int(p) for p in at.split(":"))
    for k in range(8):
        day = local.date() + timedelta(days=k)
        candidate = datetime.combine(day, time(hour, minute), zone)
        if candidate >= local and (not weekdays or day.weekday() in weekdays):
            return candidate.astimezone(UTC)
    raise AssertionError("a weekday repeats within 8 days")


def arrival(node: Any, now: datetime, timezone: str) -> tuple[str, datetime, str | None]:
    """(status, due time of the node's step, awaited event) for a run arriving at `node` at `now`."""
    if isinstance(node, d.WaitNode):
        return m.WAITING, now + node.duration.delta(), None
    if isinstance(node, d.WaitUntilNode):
        return m.WAITING, next_time_of_day(now, node.time, node.weekdays, timezone), None
    if isinstance(node, d.WaitForEventNode):
        return m.WAITING, now + node.timeout.delta(), node.event
    return m.RUN_ACTIVE, now, None


def step_args(run_id: int, seq: int) -> dict[str, int]:
    return {"run_id": run_id, "seq": seq}


def arrive(session: Session, run: JourneyRun, graph: d.Definition, node_id: str, now: datetime,
           timezone: str) -> None:
    """Move `run` to `node_id` and queue the node's step for its due time."""
    status, due, event = arrival(graph.node(node_id), now, timezone)
    run.node_id, run.seq, run.status, run.due_at, run.wait_event = node_id, run.seq + 1, status, due, event
    run.updated_at = now
    session.flush()
    queue.enqueue(session, STEP_KIND, step_args(run.id, run.seq), run_at=due, max_attempts=STEP_ATTEMPTS,
                  unique_key=f"journey-run:{run.id}:{run.seq}", now=now)


def end(run: JourneyRun, status: str, now: datetime, reason: str | None = None) -> None:
    run.status, run.ended_at, run.exit_reason, run.updated_at = status, now, reason, now
    run.due_at = run.wait_event = None
    run.seq += 1  # any step still queued for the run is now stale
    if status == m.CONVERTED and run.converted_at is None:
        run.converted_at = now


def record_step(session: Session, run: JourneyRun, outcome: str, now: datetime, detail: dict | None = None) -> None:
    session.add(JourneyStep(run_id=run.id, journey_id=run.journey_id, customer_id=run.customer_id,
                            node_id=run.node_id, seq=run.seq, outcome=outcome, detail=detail or {}, at=now))


def lock_run(session: Session, run_id: int) -> JourneyRun | None:
    """The run, locked for this transaction on PostgreSQL (a step and an arriving event never both move it)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    return session.get(JourneyRun, run_id, with_for_update=postgres, populate_existing=True)


def pick_branch(run_id: int, node: d.RandomSplitNode) -> d.Branch:
    """A weighted draw fixed by (run, node): a retried step takes the same branch."""
    digest = hashlib.sha256(f"{run_id}:{node.id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(b.weight for b in node.branches)
    for branch in node.branches:
        if point < branch.weight:
            return branch
        point -= branch.weight
    raise AssertionError("weights add up")


def run_step(session: Session, run_id: int, seq: int, now: datetime, timezone: str, job_id: int | None = None) -> str:
    """Run the step of `run_id` numbered `seq` (the job's args); returns what happened."""
    run = lock_run(session, run_id)
    if run is None or run.seq != seq or run.status not in m.OPEN:
        return "stale"
    journey = session.get(Journey, run.journey_id)
    if journey.state == m.PAUSED:
        run.status, run.updated_at = m.HELD, now  # resume queues the step again
        return "held"
    if journey.state != m.ACTIVE:
        end(run, m.EXITED, now, reason=journey.state)
        return "exited"
    graph = graph_of(session, run.version_id)
    node = graph.node(run.node_id)
    run.error = None
    from clm.journeys import actions

    if isinstance(node, d.ExitNode):
        record_step(session, run, "exit", now)
        end(run, m.COMPLETED, now, reason="exit")
        return "completed"
    if isinstance(node, d.WaitForEventNode):
        outcome, target = "timeout", node.timeout_next
    elif isinstance(node, d.WaitNode | d.WaitUntilNode):
        outcome, target = "passed", node.next
    elif isinstance(node, d.ConditionNode):
        holds = actions.condition_holds(session, node, run.customer_id, now, timezone)
        outcome, target = ("yes", node.yes) if holds else ("no", node.no)
    elif isinstance(node, d.RandomSplitNode):
        branch = pick_branch(run.id, node)
        run.variant = branch.name
        outcome, target = branch.name, branch.next
    else:
        outcome = actions.act(session, run, node, now, timezone, job_id)
        target = node.next
    record_step(session, run, outcome, now)
    arrive(session, run, graph, target, now, timezone)
    return outcome


def event_arrived(session: Session, run: JourneyRun, now: datetime, timezone: str) -> None:
    """The awaited event came for a run waiting at a wait-for-event node: take its `next` branch now."""
    graph = graph_of(session, run.version_id)
    node = graph.node(run.node_id)
    record_step(session, run, "event", now)
    arrive(session, run, graph, node.next, now, timezone)


def resume_held(session: Session, journey_id: int, now: datetime) -> int:
    """Queue again the step of every run held while the journey was paused; returns how many."""
    held = session.execute(sa.select(JourneyRun.id, JourneyRun.seq, JourneyRun.due_at, JourneyRun.wait_event)
                           .where(JourneyRun.journey_id == journey_id, JourneyRun.status == m.HELD)).all()
    for row in held:
        seq = row.seq + 1
        waiting = row.wait_event is not None and row.due_at is not None and row.due_at > now
        session.execute(sa.update(JourneyRun).where(JourneyRun.id == row.id).values(
            seq=seq, status=m.WAITING if waiting else m.RUN_ACTIVE, updated_at=now))
        queue.enqueue(session, STEP_KIND, step_args(row.id, seq), run_at=max(now, row.due_at or now),
                      max_attempts=STEP_ATTEMPTS, unique_key=f"journey-run:{row.id}:{seq}", now=now)
    return len(held)
