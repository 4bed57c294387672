"""Tiers: upgrade at once, downgrade only at the review date (after grace), history and events."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.lib.errors import FieldError
from clm.loyalty import ledger, tiers
from clm.loyalty.program import add_months
from clm.loyalty.tiers import DEFAULT_TIERS, TierIn, save_tiers
from clm.outbox.models import OutboxEvent
from tests.loyalty.conftest import T0, make_customer

DAY = timedelta(days=1)


@pytest.fixture
def ladder(db, program):
    return save_tiers(db, [TierIn(**t) for t in DEFAULT_TIERS])


def _earn(db, program, member, points, at, key):
    ledger.credit(db, member, program, key=key, points=points, reason="order", source="order", source_id=key,
                  at=at, now=at, qualifying=points)
    return tiers.evaluate(db, program, member, at)


def test_overlapping_thresholds_are_refused_naming_the_tier(db):
    bad = [TierIn(key="member", name="Thành viên", threshold=0), TierIn(key="silver", name="Bạc", threshold=5000),
           TierIn(key="gold", name="Vàng", threshold=5000)]
    with pytest.raises(FieldError) as err:
        save_tiers(db, bad)
    assert err.value.field == "tiers[2].threshold" and "overlaps 'Bạc'" in err.value.message


def test_the_first_tier_starts_at_zero(db):
    with pytest.raises(FieldError, match="start at 0"):
        save_tiers(db, [TierIn(key="silver", name="Bạc", threshold=10)])


def test_a_member_moves_up_as_soon_as_they_reach_a_threshold(db, program, ladder):
    member = ledger.lock_member(db, make_customer(db).id, T0)
    assert _earn(db, program, member, 500, T0, "a").to_tier == "member"
    change = _earn(db, program, member, 600, T0 + DAY, "b")
    assert (change.from_tier, change.to_tier, change.reason, change.measure) == ("member", "silver", "upgrade", 1100)
    assert member.tier_review_at == add_months(T0 + DAY, 12)
    topics = db.execute(sa.select(OutboxEvent.payload).where(OutboxEvent.topic == "loyalty.tier_changed")).scalars()
    assert [p["to"] for p in topics] == ["member", "silver"]
    assert [c.to_tier for c in tiers.tier_history(db, member.customer_id)] == ["member", "silver"]


def test_a_member_keeps_their_tier_until_the_review_date_then_steps_down_one(db, program, ladder):
    member = ledger.lock_member(db, make_customer(db).id, T0)
    _earn(db, program, member, 6000, T0, "a")  # gold
    assert member.tier == "gold"
    assert tiers.review(db, program, member, add_months(T0, 11)) is None
    assert member.tier == "gold"
    change = tiers.review(db, program, member, add_months(T0, 12) + DAY)  # nothing earned in the last 12 months
    assert (change.from_tier, change.to_tier, change.reason) == ("gold", "silver", "review")


def test_grace_delays_the_downgrade_and_supported_mode_drops_to_what_the_points_support(db, program, ladder):
    program.tier_grace_days, program.tier_downgrade = 30, "supported"
    member = ledger.lock_member(db, make_customer(db).id, T0)
    _earn(db, program, member, 25_000, T0, "a")  # diamond
    review_at = add_months(T0, 12)
    assert tiers.review(db, program, member, review_at + 10 * DAY) is None
    change = tiers.review(db, program, member, review_at + 31 * DAY)
    assert (change.from_tier, change.to_tier) == ("diamond", "member")


def test_a_member_still_qualifying_at_review_keeps_the_tier_until_the_next_review(db, program, ladder):
    member = ledger.lock_member(db, make_customer(db).id, T0)
    _earn(db, program, member, 1500, T0, "a")  # silver
    _earn(db, program, member, 1200, add_months(T0, 11), "b")
    assert tiers.review(db, program, member, add_months(T0, 12) + DAY) is None
    assert (member.tier, member.tier_review_at) == ("silver", add_months(T0, 24))


def test_the_sweep_reviews_members_whose_date_has_come(db, program, ladder):
    from clm.loyalty.sweep import sweep

    member = ledger.lock_member(db, make_customer(db).id, T0)
    _earn(db, program, member, 1500, T0, "a")
    sweep(db, add_months(T0, 13))
    assert member.tier == "member"


def test_spend_over_the_calendar_year_can_decide_the_tier(db, program):
    program.tier_basis, program.tier_window = "spend", "calendar_year"
    save_tiers(db, [TierIn(key="member", name="Thành viên", threshold=0),
                    TierIn(key="vip", name="VIP", threshold=10_000_000)])
    member = ledger.lock_member(db, make_customer(db).id, T0)
    ledger.credit(db, member, program, key="o1", points=0, reason="order", source="order", source_id="1",
                  at=T0, now=T0, spend=6_000_000)
    assert tiers.evaluate(db, program, member, T0).to_tier == "member"
    ledger.credit(db, member, program, key="o2", points=0, reason="order", source="order", source_id="2",
                  at=T0 + DAY, now=T0 + DAY, spend=5_000_000)
    assert tiers.evaluate(db, program, member, T0 + DAY).to_tier == "vip"
    assert tiers.measure(db, program, member.customer_id, T0.replace(year=2026, month=1, day=2)) == 0
