"""Funnel, median time in stage, flows and counts, from a known stage history."""

from __future__ import annotations

import pytest

from clm.customers.models import Customer
from clm.lifecycle.metrics import funnel, median_time_in_stage, stage_counts, stage_flows
from clm.lifecycle.models import StageHistory
from tests.lifecycle.life import day


@pytest.fixture
def known(db):
    """Five customers with hand-written histories (day numbers):
    a: awareness 0 -> consideration 2 -> conversion 6 -> retention 16
    b: awareness 0 -> consideration 4 -> conversion 8
    c: awareness 10 -> consideration 30
    d: awareness 20
    e: loyalty 40 (imported straight to loyalty: it passed every earlier stage)
    m: merged into a; its history must not count
    """
    paths = {
        "a": [("awareness", 0), ("consideration", 2), ("conversion", 6), ("retention", 16)],
        "b": [("awareness", 0), ("consideration", 4), ("conversion", 8)],
        "c": [("awareness", 10), ("consideration", 30)],
        "d": [("awareness", 20)],
        "e": [("loyalty", 40)],
        "m": [("awareness", 0), ("consideration", 1)],
    }
    ids = {}
    for name, path in paths.items():
        customer = Customer(full_name=name, lifecycle_stage=path[-1][0])
        db.add(customer)
        db.flush()
        ids[name] = customer.id
        previous = None
        for stage, at in path:
            db.add(StageHistory(customer_id=customer.id, from_stage=previous, to_stage=stage, rule="test",
                                changed_at=day(at)))
            previous = stage
    db.get(Customer, ids["m"]).merged_into_id = ids["a"]
    db.flush()
    return ids


def test_the_funnel_counts_who_entered_each_stage_and_who_reached_the_next(db, known):
    rows = {r["stage"]: r for r in funnel(db)}
    assert [(r["stage"], r["entered"], r["reached_next"]) for r in funnel(db)] == [
        ("awareness", 5, 4), ("consideration", 4, 3), ("conversion", 3, 2), ("retention", 2, 1), ("loyalty", 1, None),
    ]
    assert rows["awareness"]["conversion"] == pytest.approx(0.8)
    assert rows["loyalty"]["conversion"] is None


def test_the_funnel_since_a_date_counts_those_who_entered_after_it(db, known):
    rows = {r["stage"]: (r["entered"], r["reached_next"]) for r in funnel(db, since=day(5))}
    assert rows["awareness"] == (3, 2)  # c, d, e (e skipped awareness at day 40)
    assert rows["consideration"] == (2, 1)  # c at 30, e


def test_median_time_in_stage_uses_completed_stays(db, known):
    medians = median_time_in_stage(db)
    assert medians["awareness"] == pytest.approx(4)  # 2, 4 and 20 days; d is still there
    assert medians["consideration"] == pytest.approx(4)  # 4, 4
    assert medians["conversion"] == pytest.approx(10)  # a only; b is still there
    assert medians["retention"] is None and medians["churned"] is None


def test_flows_count_moves_between_stages(db, known):
    flows = stage_flows(db)
    assert flows[0] == {"from": None, "to": "awareness", "count": 4}
    assert {"from": "consideration", "to": "conversion", "count": 2} in flows
    assert sum(f["count"] for f in stage_flows(db, since=day(10))) == 5


def test_counts_have_every_stage_and_leave_out_merged_customers(db, known):
    assert stage_counts(db) == {"awareness": 1, "consideration": 1, "conversion": 1, "retention": 1, "loyalty": 1,
                                "at_risk": 0, "churned": 0}
