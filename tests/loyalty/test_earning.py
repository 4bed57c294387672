"""Earning from orders and events, through ingestion and the worker's loyalty steps."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.lib.errors import FieldError
from clm.loyalty.models import Entry, OrderPoints
from clm.loyalty.program import ProgramSettings, save_program
from clm.loyalty.verify import verify
from clm.outbox.models import OutboxCursor
from tests.loyalty.conftest import T0, add_rule

DAY = timedelta(days=1)


@pytest.fixture
def base_rule(db):
    return add_rule(db, "1 điểm / 10.000 ₫", "spend", {"points": 1, "per_amount": 10_000, "rounding": "down"})


def test_an_order_earns_points_that_wait_out_the_return_window(db, loyalty, shop, base_rule):
    an = shop.customer("Nguyễn Văn An")
    loyalty.order(an, 125_000)
    loyalty.run(T0)
    member = loyalty.member(an, T0)
    assert (member.pending, member.available, member.qualifying) == (12, 0, 12)
    member = loyalty.member(an, T0 + 7 * DAY)
    assert (member.pending, member.available) == (0, 12)
    assert verify(db) == []


def test_the_same_order_completed_event_handled_twice_earns_once(db, loyalty, shop, base_rule):
    an = shop.customer("An")
    loyalty.order(an, 100_000)
    loyalty.run(T0)
    db.execute(sa.update(OutboxCursor).where(OutboxCursor.consumer == "loyalty.outbox").values(last_id=0))
    loyalty.outbox.tail._handled.clear()
    loyalty.run(T0)
    assert loyalty.member(an).pending == 10
    assert db.scalar(sa.select(sa.func.count()).select_from(Entry).where(Entry.kind == "earn")) == 1


def test_rounding_rules_round_the_order_once(db, loyalty, shop):
    add_rule(db, "nearest", "spend", {"points": 1, "per_amount": 10_000, "rounding": "nearest"})
    an, binh = shop.customer("An"), shop.customer("Bình")
    loyalty.order(an, 125_000)
    loyalty.order(binh, 124_999)
    loyalty.run(T0)
    assert (loyalty.member(an).pending, loyalty.member(binh).pending) == (13, 12)


def test_a_category_multiplier_doubles_only_those_items_and_shipping_earns_nothing(db, loyalty, shop, base_rule):
    add_rule(db, "Mỹ phẩm x2", "multiplier", {"percent": 200, "categories": ["Mỹ phẩm"]})
    an = shop.customer("An")
    loyalty.order(an, 330_000, shipping=30_000,
                  items=[("SON-1", "Mỹ phẩm", 100_000, 1), ("AO-1", "Thời trang", 200_000, 1)])
    loyalty.run(T0)
    assert loyalty.member(an).pending == 30 + 10  # 30 base, 10 more on the 100,000 of cosmetics


def test_a_campaign_multiplier_counts_only_orders_placed_within_its_dates(db, loyalty, shop, base_rule):
    add_rule(db, "Cuối tuần x2", "multiplier", {"percent": 200}, starts_at=T0 + 2 * DAY, ends_at=T0 + 4 * DAY)
    an, binh = shop.customer("An"), shop.customer("Bình")
    loyalty.order(an, 100_000, at=DAY)
    loyalty.order(binh, 100_000, at=3 * DAY)
    loyalty.run(T0 + 3 * DAY)
    assert (loyalty.member(an).pending, loyalty.member(binh).pending) == (10, 20)


def test_a_tier_multiplier_and_a_tier_only_multiplier_add_up(db, loyalty, shop, base_rule):
    from clm.loyalty.tiers import TierIn, save_tiers

    save_tiers(db, [TierIn(key="member", name="Thành viên", threshold=0),
                    TierIn(key="gold", name="Vàng", threshold=10, earn_percent=150)])
    add_rule(db, "Vàng thêm 50%", "multiplier", {"percent": 150, "tiers": ["gold"]})
    an = shop.customer("An")
    loyalty.order(an, 100_000)
    loyalty.run(T0)
    assert loyalty.member(an).tier == "gold"  # 10 qualifying points: upgraded at once
    loyalty.order(an, 100_000, at=DAY)
    loyalty.run(T0 + DAY)
    assert loyalty.member(an, T0 + DAY).pending == 10 + 20  # the second order: 10 + 5 (tier) + 5 (rule)


def test_a_daily_cap_limits_what_one_customer_earns_in_a_day(db, loyalty, shop):
    add_rule(db, "capped", "spend", {"points": 1, "per_amount": 10_000, "caps": {"per_day": 15}})
    an = shop.customer("An")
    loyalty.order(an, 100_000)
    loyalty.order(an, 100_000, at=timedelta(hours=2))
    loyalty.order(an, 100_000, at=DAY)
    loyalty.run(T0 + DAY)
    assert loyalty.member(an, T0 + DAY).pending == 15 + 10


def test_a_partial_refund_reverses_the_stored_share_not_todays_rules(db, loyalty, shop, base_rule):
    an = shop.customer("An")
    order_id = loyalty.order(an, 200_000)
    loyalty.run(T0)
    base_rule.config = {**base_rule.config, "points": 5}  # the rule changes after the order
    loyalty.refund(an, order_id, 50_000, at=DAY)
    loyalty.run(T0 + DAY)
    member = loyalty.member(an, T0 + DAY)
    assert (member.pending, member.qualifying) == (15, 15)  # 20 earned, a quarter refunded
    loyalty.refund(an, order_id, at=2 * DAY)  # the rest
    loyalty.run(T0 + 2 * DAY)
    member = loyalty.member(an, T0 + 2 * DAY)
    assert (member.pending, member.available, member.qualifying) == (0, 0, 0)
    stored = db.scalar(sa.select(OrderPoints))
    assert (stored.earned, stored.reversed, stored.refunded) == (20, 20, 200_000)
    assert verify(db) == []


@pytest.mark.parametrize("policy", ["debt", "loss"])
def test_refunding_an_order_whose_points_were_spent_follows_the_policy(db, loyalty, shop, base_rule, policy):
    from clm.loyalty import ledger
    from clm.loyalty.program import require_program

    program = require_program(db)
    program.debt_policy = policy
    an = shop.customer("An")
    order_id = loyalty.order(an, 100_000)
    loyalty.run(T0)
    member = loyalty.member(an, T0 + 8 * DAY)
    ledger.debit(db, member, program, key="r", points=8, reason="voucher", source="redemption", source_id="1",
                 now=T0 + 8 * DAY)
    loyalty.refund(an, order_id, at=9 * DAY)
    loyalty.run(T0 + 9 * DAY)
    member = loyalty.member(an, T0 + 9 * DAY)
    assert (member.available, member.debt, member.lost) == ((0, 8, 0) if policy == "debt" else (0, 0, 8))
    assert verify(db) == []


def test_a_tracked_event_earns_fixed_points_when_its_properties_match(db, loyalty, shop):
    add_rule(db, "Đánh giá 5 sao", "event",
             {"trigger": "track", "event": "Review Written", "properties": {"rating": 5}, "points": 20})
    an = shop.customer("An")
    shop.track(an, "Review Written", rating=5)
    shop.track(an, "Review Written", rating=3)
    shop.track(an, "Article Read", rating=5)
    loyalty.run(T0)
    assert loyalty.member(an).available == 20


def test_sign_up_points_are_given_once(db, loyalty, shop):
    from clm.lib.clock import utcnow

    add_rule(db, "Chào mừng", "event", {"trigger": "signup", "points": 50})
    an = shop.customer("An")
    loyalty.run(utcnow())  # sign-up time is when the profile was made, which is now
    shop.customer("An again", user_id=shop.user_ids[an.id])
    loyalty.run(utcnow())
    assert loyalty.member(an, utcnow()).available == 50


def test_birthday_month_points_once_a_year(db, loyalty, shop):
    from datetime import date

    from clm.loyalty.consumers import birthday_points
    from clm.loyalty.program import require_program

    add_rule(db, "Sinh nhật", "event", {"trigger": "birthday", "points": 30})
    an = shop.customer("An")
    an.birthday = date(1990, 3, 15)
    shop.customer("Bình").birthday = date(1990, 7, 1)
    db.flush()
    assert birthday_points(db, require_program(db), T0) == 1
    assert birthday_points(db, require_program(db), T0 + 3 * DAY) == 0
    assert loyalty.member(an).available == 30


@pytest.mark.parametrize(("kind", "config", "field"), [
    ("spend", {"points": 0}, "config.points"),
    ("spend", {"points": 1, "rounding": "sideways"}, "config.rounding"),
    ("multiplier", {}, "config.percent"),
    ("event", {"trigger": "track", "points": 5}, "config"),
    ("event", {"trigger": "signup", "points": 5, "colour": "red"}, "config.colour"),
])
def test_a_rule_that_does_not_parse_is_refused_naming_the_field(db, kind, config, field):
    with pytest.raises(FieldError) as err:
        add_rule(db, "bad", kind, config)
    assert err.value.field == field


def test_a_program_setting_out_of_range_is_refused(db):
    with pytest.raises(ValueError, match="pending_days"):
        save_program(db, ProgramSettings(pending_days=-1))


def test_orders_placed_before_the_program_began_earn_nothing(db, loyalty, shop, base_rule, program):
    program.created_at = T0 + DAY
    an = shop.customer("An")
    loyalty.order(an, 100_000)
    loyalty.order(an, 100_000, at=2 * DAY)
    loyalty.run(T0 + 2 * DAY)
    assert loyalty.member(an, T0 + 2 * DAY).pending == 10
