"""Rule points: segment-rule conditions worth points with decay, kept beside the learned score, and the two
compared on the training holdout (the learned score wins where conversion depends on what the business did
not guess) and on the closed deals' leads."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.lib.errors import FieldError
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import Lead, Opportunity
from clm.sales.points import PointRuleIn, compare, points_of, save_point_rule
from clm.sales.scoring.service import score_open_leads, train
from clm.tracking.ingest import ingest
from tests.customers.shop import T0
from tests.sales.test_scoring import synthetic_history

VIEWED = {"type": "event", "name": "Product Viewed", "op": "at_least", "count": 1, "window": {"last_days": 30}}
CART = {"type": "event", "name": "Product Added", "op": "at_least", "count": 1, "window": {"last_days": 30}}


def visit(db, user: str, event: str, at) -> int:
    assert not ingest(db, [{"type": "track", "userId": user, "event": event, "properties": {"product_id": "SOFA"},
                            "timestamp": at.isoformat()}], received_at=at).rejected
    from clm.customers.models import Identity

    return db.scalar(sa.select(Identity.customer_id).where(Identity.kind == "user_id", Identity.value == user))


def test_a_customer_gets_the_points_of_every_rule_it_matches_with_the_detail(db):
    save_point_rule(db, PointRuleIn(name="Xem sản phẩm", rule=VIEWED, points=10))
    save_point_rule(db, PointRuleIn(name="Thêm giỏ", rule=CART, points=25))
    save_point_rule(db, PointRuleIn(name="Chưa mua", rule={"type": "event", "name": "Order Completed", "op": "exactly",
                                                           "count": 0}, points=-5))
    now = T0 + timedelta(days=40)
    both = visit(db, "p-1", "Product Viewed", now - timedelta(days=2))
    visit(db, "p-1", "Product Added", now - timedelta(days=2))
    viewer = visit(db, "p-2", "Product Viewed", now - timedelta(days=3))
    found = points_of(db, [both, viewer], now)
    assert found[both][0] == pytest.approx(30) and found[viewer][0] == pytest.approx(5)
    assert [d["name"] for d in found[both][1]] == ["Xem sản phẩm", "Thêm giỏ", "Chưa mua"]


def test_points_halve_every_half_life_since_the_customer_last_did_the_events(db):
    save_point_rule(db, PointRuleIn(name="Thêm giỏ", rule={**CART, "window": {"last_days": 90}}, points=40,
                                    half_life_days=10))
    now = T0 + timedelta(days=60)
    fresh = visit(db, "d-1", "Product Added", now)
    older = visit(db, "d-2", "Product Added", now - timedelta(days=10))
    oldest = visit(db, "d-3", "Product Added", now - timedelta(days=30))
    found = points_of(db, [fresh, older, oldest], now)
    assert [round(found[c][0], 1) for c in (fresh, older, oldest)] == [40.0, 20.0, 5.0]


def test_a_bad_rule_or_a_rule_worth_nothing_is_refused_naming_the_field(db):
    with pytest.raises(FieldError) as err:
        save_point_rule(db, PointRuleIn(name="Sai", rule={"type": "event"}, points=5))
    assert err.value.field.startswith("rule")
    with pytest.raises(ValueError, match="0 points"):
        PointRuleIn(name="Không", rule=VIEWED, points=0)


def test_new_leads_carry_rule_points_beside_the_learned_score(db):
    save_point_rule(db, PointRuleIn(name="Từ Zalo ở Hà Nội", rule={"type": "profile", "field": "city", "op": "eq",
                                                                   "value": "Hà Nội"}, points=15))
    lead = capture_lead(db, LeadIn(phone="0917000001", city="Hà Nội", source="zalo"), first_contact_minutes=0).lead
    assert lead.score is not None and lead.rule_points == 15
    assert lead.rule_points_detail == [{"rule_id": lead.rule_points_detail[0]["rule_id"], "name": "Từ Zalo ở Hà Nội",
                                        "points": 15.0}]


def test_on_a_history_decided_by_the_cart_and_the_source_the_learned_score_beats_the_rule_points(db):
    """The business guesses that browsing matters; the deals were decided by carts, referrals and imports."""
    synthetic_history(db, 400)
    save_point_rule(db, PointRuleIn(name="Xem nhiều", rule={**VIEWED, "count": 3}, points=20))
    row = train(db, T0 + timedelta(days=90))
    evaluation = row.params["evaluation"]
    assert evaluation["auc"] > 0.65
    assert evaluation["rules_auc"] < evaluation["auc"]  # the same holdout deals, judged at the same moments


def test_compare_ranks_closed_deals_by_the_scores_they_had_while_open(db):
    synthetic_history(db, 120)
    save_point_rule(db, PointRuleIn(name="Xem", rule=VIEWED, points=5))
    db.execute(sa.update(Lead).values(status="new"))  # score them as open leads, as the worker did
    score_open_leads(db, T0 + timedelta(days=90))
    db.execute(sa.update(Lead).values(status="converted"))
    result = compare(db)
    won = db.scalar(sa.select(sa.func.count()).select_from(Opportunity).where(Opportunity.status == "won"))
    assert result["deals"] == 120 and result["won"] == won
    assert 0 <= result["auc_rules"] <= 1 and 0 <= result["auc_learned"] <= 1
