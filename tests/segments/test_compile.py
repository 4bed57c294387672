"""The SQL compiler and the Python evaluator give the same members, on SQLite and PostgreSQL, for rule
trees of every condition kind (hand-picked and hypothesis-generated)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clm.customers.models import Customer
from clm.segments.compile import members_query
from clm.segments.evaluate import load_facts, members
from clm.segments.lookup import make_context
from clm.segments.models import Segment
from clm.segments.render import render
from clm.segments.rules import parse_rules
from tests.segments import world
from tests.segments.trees import trees

NOW = world.NOW


@pytest.fixture
def shop(db):
    ids = world.build(db)
    dynamic = Segment(name="Huế or tea", kind="dynamic", depends_on=[], created_at=NOW, updated_at=NOW,
                      rules={"any": [{"type": "profile", "field": "city", "op": "eq", "value": "Huế"},
                                     {"type": "bought", "category": "tea"}]})
    db.add(dynamic)
    db.flush()
    return Shop(ids=ids, static=world.static_segment_id(db), dynamic=dynamic.id, facts=load_facts(db))


class Shop(SimpleNamespace):
    def __repr__(self) -> str:
        return f"Shop({len(self.ids)} customers)"


def both(db, shop, tree, scope=None):
    node = parse_rules(tree)
    sql = set(db.scalars(members_query(node, make_context(db, NOW, scope_ids=scope))))
    python = members(node, shop.facts, make_context(db, NOW))
    if scope is not None:
        python &= set(scope)
    return sql, python


def agree(db, shop, tree) -> set[int]:
    sql, python = both(db, shop, tree)
    assert sql == python, render(parse_rules(tree))
    return sql


HAND_PICKED = [
    {"type": "profile", "field": "city", "op": "eq", "value": "Hà Nội"},
    {"type": "profile", "field": "city", "op": "ne", "value": "Hà Nội"},
    {"type": "profile", "field": "email", "op": "contains", "value": "p%q"},
    {"type": "profile", "field": "email", "op": "starts_with", "value": "x_y"},
    {"type": "profile", "field": "full_name", "op": "ends_with", "value": "An"},
    {"type": "profile", "field": "birthday", "op": "anniversary_within_days", "value": 7},
    {"type": "profile", "field": "created_at", "op": "more_than_days_ago", "value": 30},
    {"type": "profile", "field": "traits.tier", "op": "in", "value": ["gold", "silver"]},
    {"type": "profile", "field": "traits.score", "op": "gt", "value": 4},
    {"type": "profile", "field": "traits.vip", "op": "is_true"},
    {"type": "stage", "stages": ["retention", "at_risk"]},
    {"type": "stage_entered", "stage": "at_risk", "within_days": 30},
    {"type": "event", "name": "Product Viewed", "op": "at_least", "count": 2, "window": {"last_days": 30}},
    {"type": "event", "name": "Product Viewed", "count": 1, "where": [
        {"property": "category", "op": "eq", "value": "skincare"}]},
    {"type": "event", "name": "Order Completed", "op": "exactly", "count": 0, "window": {"since": "2025-05-01"}},
    {"type": "orders", "metric": "count", "op": "gte", "value": 2},
    {"type": "orders", "metric": "average_order_value", "op": "gt", "value": 300_000},
    {"type": "orders", "metric": "last_order_at", "op": "within_last_days", "value": 60},
    {"type": "bought", "category": "tea", "window": {"last_days": 90}},
    {"type": "bought", "sku": "SKU%4"},
    {"type": "score", "field": "p_alive", "op": "lt", "value": 0.5},
    {"type": "score", "field": "rfm_segment", "op": "in", "value": ["champions", "new"]},
    {"type": "consent", "channel": "zalo"},
    {"type": "segment", "segment_id": "STATIC"},
    {"type": "segment", "segment_id": "DYNAMIC"},
]


@pytest.mark.parametrize("tree", HAND_PICKED, ids=[f"{t['type']}-{i}" for i, t in enumerate(HAND_PICKED)])
def test_every_condition_kind_gives_the_same_members_in_sql_and_in_python(db, shop, tree):
    if tree.get("segment_id") in ("STATIC", "DYNAMIC"):
        tree = {**tree, "segment_id": shop.static if tree["segment_id"] == "STATIC" else shop.dynamic}
    found = agree(db, shop, tree)
    negated = agree(db, shop, {"not": tree})
    assert found.isdisjoint(negated) and found | negated == set(shop.ids)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_random_trees_give_the_same_members_in_sql_and_in_python(db, shop, data):
    tree = data.draw(trees(shop.static, shop.dynamic))
    agree(db, shop, tree)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_checking_a_few_customers_gives_their_share_of_the_full_answer(db, shop, data):
    tree = data.draw(trees(shop.static, shop.dynamic))
    scope = data.draw(st.lists(st.sampled_from(shop.ids), min_size=1, max_size=5, unique=True))
    sql, python = both(db, shop, tree, scope)
    assert sql == python


@pytest.mark.parametrize("value", world.HOSTILE)
def test_hostile_strings_match_literally(db, shop, value):
    customer = Customer(full_name=f"x{value}y", city=value, traits={"note": value}, created_at=NOW)
    db.add(customer)
    db.flush()
    shop.facts = load_facts(db)
    for op in ("eq", "contains", "starts_with", "ends_with"):
        for field in ("city", "traits.note"):
            found = agree(db, shop, {"type": "profile", "field": field, "op": op, "value": value})
            assert customer.id in found
            expected = {cid for cid, f in shop.facts.items()
                        if isinstance(v := (f.customer["traits"].get("note") if field.startswith("traits")
                                            else f.customer["city"]), str) and _literal(op, v, value)}
            assert found == expected
    assert db.scalar(sa.select(sa.func.count()).select_from(Customer)) > 1  # the table survived


def _literal(op: str, text: str, value: str) -> bool:
    return {"eq": text == value, "contains": value in text, "starts_with": text.startswith(value),
            "ends_with": text.endswith(value)}[op]


def test_merged_customers_are_never_members(db, shop):
    merged = set(db.scalars(sa.select(Customer.id).where(Customer.merged_into_id.is_not(None))))
    assert merged and merged.isdisjoint(agree(db, shop, {"type": "profile", "field": "city", "op": "eq",
                                                         "value": "Huế"}))


def test_a_number_beyond_a_small_columns_range_is_compared_not_refused(db, shop):
    assert agree(db, shop, {"type": "score", "field": "r_score", "op": "lt", "value": 250_000}) == {
        cid for cid, f in shop.facts.items() if f.scores and f.scores["r_score"] is not None}
