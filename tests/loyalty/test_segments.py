"""Segments on loyalty: tier, redeemable points, points expiring within D days and lifetime points give the
same members in SQL (SQLite and PostgreSQL) and in the Python evaluator, the builder edits them, and a
member who earns enters a segment without a manual refresh."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.loyalty.models import Entry, Lot, Member
from clm.segments import builder, membership, service
from clm.segments.compile import members_query
from clm.segments.evaluate import load_facts, members
from clm.segments.lookup import make_context
from clm.segments.render import render
from clm.segments.rules import parse_rules
from clm.worker.loop import Worker
from clm.worker.steps import build_steps
from tests.loyalty.conftest import T0, add_rule
from tests.segments import world

NOW = world.NOW
TIERS = ["member", "silver", "gold", "diamond"]


@pytest.fixture
def loyal(db):
    """The segments' test shop, two thirds of its customers in the program with lots expiring around NOW."""
    ids = world.build(db, customers=30)
    rng = random.Random(11)
    expected = {"gold": set(), "expiring_30": {}}
    for n, cid in enumerate(ids):
        if n % 3 == 2:
            continue
        tier = rng.choice(TIERS)
        if tier == "gold":
            expected["gold"].add(cid)
        available, earned, soon = 0, 0, 0
        for k in range(rng.randint(0, 4)):
            points = rng.choice([10, 50, 100, 250])
            remaining = rng.choice([0, points // 2, points])
            expires = rng.choice([None, NOW - timedelta(days=1), NOW + timedelta(days=3),
                                  NOW + timedelta(days=30), NOW + timedelta(days=30, seconds=1),
                                  NOW + timedelta(days=200)])
            entry = Entry(customer_id=cid, key=f"test:{cid}:{k}", kind="earn", reason="test", source="system",
                          available=points, created_at=NOW - timedelta(days=10))
            db.add(entry)
            db.flush()
            db.add(Lot(customer_id=cid, entry_id=entry.id, points=points, remaining=remaining, released=True,
                       available_at=NOW - timedelta(days=10), expires_at=expires, created_at=NOW))
            earned += points
            available += remaining
            if expires is not None and NOW < expires <= NOW + timedelta(days=30):
                soon += remaining
        db.add(Member(customer_id=cid, available=available, pending=0, debt=0, qualifying=earned, earned=earned,
                      redeemed=earned - available, expired=0, lost=0, tier=tier, tier_since=NOW,
                      created_at=NOW, updated_at=NOW))
        expected["expiring_30"][cid] = soon
    db.flush()
    return ids, expected, load_facts(db)


def both(db, facts, tree) -> set[int]:
    node = parse_rules(tree)
    sql = set(db.scalars(members_query(node, make_context(db, NOW))))
    assert sql == members(node, facts, make_context(db, NOW)), render(node)
    return sql


HAND_PICKED = [
    {"type": "loyalty", "field": "tier", "op": "eq", "value": "gold"},
    {"type": "loyalty", "field": "tier", "op": "in", "value": ["silver", "diamond"]},
    {"type": "loyalty", "field": "tier", "op": "exists"},
    {"type": "loyalty", "field": "available", "op": "gte", "value": 100},
    {"type": "loyalty", "field": "available", "op": "eq", "value": 0},
    {"type": "loyalty", "field": "lifetime", "op": "between", "value": [100, 400]},
    {"type": "loyalty", "field": "expiring", "within_days": 30, "op": "gt", "value": 0},
    {"type": "loyalty", "field": "expiring", "within_days": 3, "op": "gte", "value": 50},
]


@pytest.mark.parametrize("tree", HAND_PICKED, ids=[f"{t['field']}-{i}" for i, t in enumerate(HAND_PICKED)])
def test_each_loyalty_condition_gives_the_same_members_in_sql_and_in_python(db, loyal, tree):
    ids, _, facts = loyal
    found = both(db, facts, tree)
    negated = both(db, facts, {"not": tree})
    assert found.isdisjoint(negated) and found | negated == set(ids)


def test_the_tier_condition_finds_exactly_the_members_of_that_tier(db, loyal):
    _, expected, facts = loyal
    assert expected["gold"]
    assert both(db, facts, HAND_PICKED[0]) == expected["gold"]


def test_points_expiring_count_only_what_is_left_of_lots_expiring_in_the_window(db, loyal):
    ids, expected, facts = loyal
    wanted = {cid for cid, soon in expected["expiring_30"].items() if soon >= 50}
    assert wanted and wanted != set(expected["expiring_30"])
    assert both(db, facts, {"type": "loyalty", "field": "expiring", "within_days": 30, "op": "gte",
                            "value": 50}) == wanted


def test_customers_outside_the_program_have_no_tier_and_no_points(db, loyal):
    ids, expected, facts = loyal
    outside = set(ids) - set(expected["expiring_30"])
    assert outside
    assert outside <= both(db, facts, {"type": "loyalty", "field": "available", "op": "eq", "value": 0})
    assert outside <= both(db, facts, {"type": "loyalty", "field": "tier", "op": "not_exists"})


LOYALTY = st.one_of(
    st.builds(lambda op, v: {"type": "loyalty", "field": "tier", "op": op, "value": v},
              st.sampled_from(["eq", "ne", "starts_with"]), st.sampled_from([*TIERS, "none"])),
    st.builds(lambda f, op, v: {"type": "loyalty", "field": f, "op": op, "value": v},
              st.sampled_from(["available", "lifetime"]), st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
              st.sampled_from([0, 10, 50, 100, 250, 500])),
    st.builds(lambda d, op, v: {"type": "loyalty", "field": "expiring", "within_days": d, "op": op, "value": v},
              st.sampled_from([1, 3, 29, 30, 31, 365]), st.sampled_from(["gt", "gte", "lt", "eq"]),
              st.sampled_from([0, 5, 50, 125])),
)
TREES = st.recursive(LOYALTY, lambda kids: st.one_of(
    st.builds(lambda xs: {"all": xs}, st.lists(kids, min_size=1, max_size=3)),
    st.builds(lambda xs: {"any": xs}, st.lists(kids, min_size=1, max_size=3)),
    st.builds(lambda x: {"not": x}, kids)), max_leaves=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(tree=TREES)
def test_random_loyalty_trees_give_the_same_members_in_sql_and_in_python(db, loyal, tree):
    both(db, loyal[2], tree)


def test_expiring_points_need_their_window_and_only_they_take_one():
    from clm.lib.errors import FieldError

    with pytest.raises(FieldError) as missing:
        parse_rules({"type": "loyalty", "field": "expiring", "op": "gt", "value": 0})
    assert missing.value.field == "rules.within_days"
    with pytest.raises(FieldError) as extra:
        parse_rules({"type": "loyalty", "field": "available", "within_days": 3, "op": "gt", "value": 0})
    assert extra.value.field == "rules.within_days"
    with pytest.raises(FieldError) as wrong:
        parse_rules({"type": "loyalty", "field": "tier", "op": "gt", "value": 1})
    assert wrong.value.field == "rules.op"


def test_the_builder_round_trips_loyalty_conditions_and_reads_the_days_typed():
    for tree in HAND_PICKED:
        assert builder.to_rules(builder.from_rules(tree))["all"][0] == tree
    form = {"r.kind": "group", "r.mode": "all", "r.0.kind": "cond", "r.0.type": "loyalty",
            "r.0.previous_type": "loyalty", "r.0.field": "expiring", "r.0.days": "14", "r.0.op": "gte",
            "r.0.value": "100"}
    assert builder.to_rules(builder.from_form(form)) == {"all": [
        {"type": "loyalty", "field": "expiring", "within_days": 14, "op": "gte", "value": 100}]}


def test_segments_on_expiring_points_are_rechecked_by_time_and_by_ledger_changes(db):
    deps = service.dependencies(parse_rules(HAND_PICKED[6]), lambda _id: None)
    assert deps == ["loyalty", "time"]
    assert service.dependencies(parse_rules(HAND_PICKED[0]), lambda _id: None) == ["loyalty"]


def test_a_member_enters_a_points_segment_when_an_order_earns_without_a_manual_refresh(
        db, shop, loyalty, session_factory, settings):
    add_rule(db, "1 điểm / 10.000 ₫", "spend", {"points": 1, "per_amount": 10_000, "rounding": "down"})
    an = shop.customer("An")
    segment = service.save_segment(db, name="Có điểm", now=T0,
                                   rules={"type": "loyalty", "field": "lifetime", "op": "gte", "value": 50})
    db.commit()
    assert membership.current_members(db, segment.id) == set()
    loyalty.order(an, 600_000, at=timedelta(hours=1))
    Worker(session_factory, build_steps(settings), poll_seconds=0.01).run_round(now=T0 + timedelta(hours=2))
    db.expire_all()
    assert membership.current_members(db, segment.id) == {an.id}
