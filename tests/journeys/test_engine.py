"""Runs through a journey: waits, branches, actions once, versions, pause and resume, goals, parking."""

from __future__ import annotations

import sqlalchemy as sa

from clm.jobs import queue
from clm.jobs.effects import effect_done
from clm.jobs.models import Job
from clm.journeys import service
from clm.journeys.consumers import handle_events
from clm.journeys.models import JourneyStep
from clm.tracking.models import Event
from tests.journeys.conftest import END, graph, run_of, trait, traits_of, wait


def enter(db, journey_id: int, customer_id: int, key: str | None = None) -> int:
    run_id = service.trigger(db, journey_id, customer_id, key, {})
    db.commit()
    return run_id


def track(db, customer_id: int, name: str, at, **properties) -> None:
    import uuid

    event = Event(message_id=uuid.uuid4().hex, customer_id=customer_id, type="track", name=name,
                  properties=properties, context={}, timestamp=at, received_at=at)
    db.add(event)
    db.flush()
    handle_events(db, [event], at, "Asia/Ho_Chi_Minh")
    db.commit()


def test_a_wait_holds_the_customer_until_its_time_then_the_next_step_runs_once(db, clock, people, drain, live):
    [anna] = people()
    journey = live(graph(wait("w", "t", days=2), trait("t", "welcomed", True), END))
    enter(db, journey, anna)
    drain()
    run = run_of(db, journey, anna)
    assert (run.status, run.node_id, run.due_at) == ("waiting", "w", clock.now.replace(day=5))
    clock.advance(days=1, hours=23)
    assert drain() == 0
    assert "welcomed" not in traits_of(db, anna)
    clock.advance(hours=1)
    drain()
    assert traits_of(db, anna)["welcomed"] is True
    run = run_of(db, journey, anna)
    assert (run.status, run.exit_reason) == ("completed", "exit")
    outcomes = db.execute(sa.select(JourneyStep.node_id, JourneyStep.outcome).where(JourneyStep.run_id == run.id)
                          .order_by(JourneyStep.seq)).all()
    assert outcomes == [("w", "passed"), ("t", "updated"), ("end", "exit")]
    assert effect_done(db, f"journey:{run.id}:2")


def test_wait_until_a_time_of_day_on_a_weekday_uses_the_business_time_zone(db, clock, people, drain, live):
    [anna] = people()
    journey = live(graph({"id": "w", "type": "wait_until", "time": "08:30", "weekdays": [5], "next": "t"},
                         trait("t", "weekend", True), END))
    enter(db, journey, anna)
    drain()
    run = run_of(db, journey, anna)
    # Monday 09:00 in Ho Chi Minh City -> Saturday 08:30 local = 01:30 UTC
    assert run.due_at.isoformat() == "2025-03-08T01:30:00+00:00"


def test_a_wait_for_an_event_takes_the_event_branch_or_the_timeout_branch(db, clock, people, drain, live):
    anna, binh = people(2)
    journey = live(graph({"id": "e", "type": "wait_for_event", "event": "Order Completed", "timeout": {"days": 3},
                          "where": [{"property": "total", "op": "gte", "value": 100000}],
                          "next": "thanks", "timeout_next": "nudge"},
                         trait("thanks", "thanked", True), trait("nudge", "nudged", True), END))
    enter(db, journey, anna)
    enter(db, journey, binh)
    drain()
    clock.advance(days=1)
    track(db, anna, "Order Completed", clock.now, total=50000)  # below the filter: still waiting
    assert run_of(db, journey, anna).status == "waiting"
    track(db, anna, "Order Completed", clock.now, total=250000)
    drain()
    clock.advance(days=2)
    drain()
    assert traits_of(db, anna) == {"thanked": True}  # and the stale timeout step did nothing
    assert traits_of(db, binh) == {"nudged": True}


def test_a_condition_splits_on_a_segment_rule_tree_for_this_customer(db, clock, people, drain, live):
    [hanoi] = people(city="Hà Nội")
    [hue] = people(city="Huế")
    journey = live(graph({"id": "c", "type": "condition", "rules": {"type": "profile", "field": "city", "op": "eq",
                                                                     "value": "Hà Nội"}, "yes": "y", "no": "n"},
                         trait("y", "branch", "yes"), trait("n", "branch", "no"), END))
    for c in (hanoi, hue):
        enter(db, journey, c)
    drain()
    assert (traits_of(db, hanoi)["branch"], traits_of(db, hue)["branch"]) == ("yes", "no")


def test_a_random_split_spreads_customers_by_weight_and_the_control_group_gets_nothing(db, clock, people, drain, live):
    ids = people(60)
    journey = live(graph({"id": "ab", "type": "random_split", "branches": [
        {"name": "A", "weight": 50, "next": "a"}, {"name": "control", "weight": 50, "control": True, "next": "end"}]},
        trait("a", "offer", "A"), END))
    for c in ids:
        enter(db, journey, c)
    drain()
    variants = {c: run_of(db, journey, c).variant for c in ids}
    assert set(variants.values()) == {"A", "control"}
    for c in ids:
        assert ("offer" in traits_of(db, c)) == (variants[c] == "A")


def test_editing_a_live_journey_makes_a_version_and_runs_inside_finish_on_theirs(db, clock, people, drain, live):
    first, second = people(2)
    v1 = graph(wait("w", "t", days=1), trait("t", "version", 1), END)
    journey = live(v1)
    enter(db, journey, first)
    drain()
    edited = service.save_journey(db, journey_id=journey, name="Chào mừng",
                                  definition=graph(wait("w", "t", days=1), trait("t", "version", 2), END))
    db.commit()
    assert edited.version == 2 and [v.number for v in service.versions(db, journey)] == [1, 2]
    enter(db, journey, second)
    clock.advance(days=1)
    drain()
    assert (traits_of(db, first)["version"], traits_of(db, second)["version"]) == (1, 2)
    assert [(v, n, s, k) for v, n, s, k in service.positions(db, journey)] == [(1, "end", "completed", 1),
                                                                               (2, "end", "completed", 1)]


def test_a_pause_holds_every_waiting_customer_and_resume_lets_them_go_on(db, clock, people, drain, live):
    [anna] = people()
    journey = live(graph(wait("w", "t", days=1), trait("t", "done", True), END))
    enter(db, journey, anna)
    drain()
    service.pause(db, journey)
    db.commit()
    clock.advance(days=2)
    drain()
    assert run_of(db, journey, anna).status == "held"
    assert "done" not in traits_of(db, anna)
    service.resume(db, journey)
    db.commit()
    drain()
    assert traits_of(db, anna)["done"] is True
    assert run_of(db, journey, anna).status == "completed"


def test_a_paused_journey_lets_nobody_in(db, clock, people, live):
    import pytest

    from clm.lib.errors import FieldError

    [anna] = people()
    journey = live(graph(wait("w", "end", days=1), END))
    service.pause(db, journey)
    with pytest.raises(FieldError, match="paused"):
        service.trigger(db, journey, anna, None, {})


def test_the_goal_within_its_window_ends_the_run_as_converted(db, clock, people, drain, live):
    anna, binh = people(2)
    journey = live(graph(wait("w", "t", days=5), trait("t", "reminded", True), END,
                         goal={"event": "Order Completed", "within_days": 7}))
    enter(db, journey, anna)
    enter(db, journey, binh)
    drain()
    clock.advance(days=2)
    track(db, anna, "Order Completed", clock.now)
    clock.advance(days=3)
    drain()
    run = run_of(db, journey, anna)
    assert (run.status, run.exit_reason, run.converted_at) == ("converted", "goal", clock.now.replace(day=5))
    assert "reminded" not in traits_of(db, anna)  # the run ended: its pending step did nothing
    assert traits_of(db, binh)["reminded"] is True
    clock.advance(days=1)
    track(db, binh, "Order Completed", clock.now)  # after its run completed, still in the window
    assert run_of(db, journey, binh).status == "completed" and run_of(db, journey, binh).converted_at == clock.now
    assert service.summary(db, journey)["converted"] == 2


def test_reentry_never_always_and_after_days(db, clock, people, drain, live):
    [anna] = people()
    flow = [trait("t", "x", 1), END]
    never = live(graph(*flow), name="never")
    always = live(graph(*flow, entry={"reentry": "always"}), name="always")
    later = live(graph(*flow, entry={"reentry": "after_days", "reentry_days": 10}), name="later")
    for j in (never, always, later):
        assert enter(db, j, anna) is not None
    drain()
    clock.advance(days=3)
    assert [enter(db, j, anna) is not None for j in (never, always, later)] == [False, True, False]
    clock.advance(days=8)
    assert enter(db, later, anna) is not None


def test_one_entry_per_cause_and_one_open_run_per_customer(db, clock, people, live):
    [anna] = people()
    journey = live(graph(wait("w", "end", days=1), END, entry={"reentry": "always"}))
    assert enter(db, journey, anna, key="cart-1") is not None
    assert enter(db, journey, anna, key="cart-2") is None  # still inside
    assert enter(db, journey, anna, key="cart-1") is None


def test_a_failing_action_retries_then_parks_the_customer_and_the_others_go_on(db, clock, people, drain, live,
                                                                                 monkeypatch):
    from clm.journeys import actions

    anna, binh = people(2)
    journey = live(graph(trait("t", "x", 1), END))
    original = actions.act

    def flaky(session, run, node, now, timezone, job_id):
        if run.customer_id == anna:
            raise RuntimeError("CRM is down")
        return original(session, run, node, now, timezone, job_id)

    monkeypatch.setattr(actions, "act", flaky)
    enter(db, journey, anna)
    enter(db, journey, binh)
    for _ in range(6):
        drain()
        clock.advance(days=1)  # past every backoff
    run = run_of(db, journey, anna)
    assert (run.status, run.node_id, run.error) == ("parked", "t", "RuntimeError: CRM is down")
    assert run_of(db, journey, binh).status == "completed"
    dead = db.scalar(sa.select(Job).where(Job.state == "dead"))
    assert len(dead.errors) == 5
    monkeypatch.setattr(actions, "act", original)
    queue.retry_dead(db, dead.id)
    db.commit()
    drain()
    assert run_of(db, journey, anna).status == "completed" and traits_of(db, anna) == {"x": 1}


def test_archiving_ends_every_open_run(db, clock, people, drain, live):
    [anna] = people()
    journey = live(graph(wait("w", "t", days=1), trait("t", "x", 1), END))
    enter(db, journey, anna)
    drain()
    service.archive(db, journey)
    db.commit()
    clock.advance(days=2)
    drain()
    run = run_of(db, journey, anna)
    assert (run.status, run.exit_reason) == ("exited", "archived") and traits_of(db, anna) == {}
