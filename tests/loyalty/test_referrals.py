"""Referrals: both sides rewarded once the referred customer's first order passes the return window;
self-referral, a customer who ordered before, a refunded or a second "first" order earn nothing."""

from datetime import timedelta

import pytest

from clm.lib.errors import FieldError
from clm.loyalty import referrals
from clm.loyalty.models import Referral
from clm.loyalty.program import require_program
from clm.loyalty.sweep import sweep
from tests.loyalty.conftest import T0

DAY = timedelta(days=1)


@pytest.fixture
def pair(db, shop, loyalty):
    an = shop.customer("An", email="an@example.vn")
    binh = shop.customer("Bình", email="binh@example.vn")
    code = referrals.referral_code(db, an.id, T0)
    return an, binh, code


def test_both_are_rewarded_when_the_first_order_passes_the_return_window(db, shop, loyalty, pair):
    an, binh, code = pair
    referral = referrals.refer(db, code, binh.id, T0)
    loyalty.order(binh, 300_000, at=DAY)
    loyalty.run(T0 + DAY)
    assert (referral.status, referral.qualifies_at) == ("ordered", T0 + 8 * DAY)
    sweep(db, T0 + 5 * DAY)
    assert referral.status == "ordered"
    sweep(db, T0 + 9 * DAY)
    program = require_program(db)
    assert referral.status == "rewarded"
    assert loyalty.member(an, T0 + 9 * DAY).available == program.referrer_points
    assert loyalty.member(binh, T0 + 9 * DAY).available == program.referred_points
    sweep(db, T0 + 10 * DAY)
    assert loyalty.member(an, T0 + 10 * DAY).available == program.referrer_points  # once


def test_a_refunded_first_order_earns_nothing_and_neither_does_the_next_one(db, shop, loyalty, pair):
    an, binh, code = pair
    referral = referrals.refer(db, code, binh.id, T0)
    first = loyalty.order(binh, 300_000, at=DAY)
    loyalty.run(T0 + DAY)
    loyalty.refund(binh, first, at=2 * DAY)
    loyalty.run(T0 + 2 * DAY)
    assert (referral.status, referral.reason) == ("rejected", "the first order was refunded")
    loyalty.order(binh, 300_000, at=3 * DAY)  # a second "first order"
    loyalty.run(T0 + 3 * DAY)
    sweep(db, T0 + 20 * DAY)
    assert referral.status == "rejected"
    assert loyalty.member(an, T0 + 20 * DAY).available == 0


def test_a_customer_who_has_ordered_before_cannot_be_referred(db, shop, loyalty, pair):
    _an, binh, code = pair
    loyalty.order(binh, 100_000)
    with pytest.raises(FieldError) as err:
        referrals.refer(db, code, binh.id, T0 + DAY)
    assert err.value.code == "not_new"


def test_referring_oneself_through_a_second_profile_with_the_same_email_is_refused(db, shop, loyalty, pair):
    an, _binh, code = pair
    twin = shop.customer("An 2")
    twin.email = "AN@example.vn"
    db.flush()
    with pytest.raises(FieldError) as err:
        referrals.refer(db, code, twin.id, T0)
    assert err.value.code == "self_referral"
    with pytest.raises(FieldError):
        referrals.refer(db, code, an.id, T0)
    assert db.query(Referral).count() == 0
