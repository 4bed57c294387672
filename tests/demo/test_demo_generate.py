"""The generated shop, before any database: deterministic, Vietnamese, with repeat-buying structure."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import islice

import numpy as np
import phonenumbers
import pytest

from clm.demo.generate import LEAN_ABOVE, ShopSpec, stories
from clm.demo.people import FAMILY, phone_number
from clm.demo.seasons import tet_days

NOW = datetime(2025, 6, 30, 12, tzinfo=UTC)


def _shop(customers: int, seed: int = 7, **kw) -> list[list[dict]]:
    return list(stories(ShopSpec(customers=customers, seed=seed, now=NOW, **kw)))


@pytest.fixture(scope="module")
def shop() -> list[list[dict]]:
    return _shop(3000)


def _orders(story: list[dict]) -> list[dict]:
    return [m for m in story if m.get("event") == "Order Completed"]


def test_the_same_seed_builds_the_same_shop():
    assert _shop(150, seed=3) == _shop(150, seed=3)


def test_a_customers_story_does_not_depend_on_how_many_customers_are_asked_for(shop):
    assert shop[:3] == _shop(3)
    assert shop[1000:1002] == list(islice(stories(ShopSpec(customers=1002, seed=7, now=NOW)), 1000, 1002))


def test_another_seed_builds_other_customers():
    names = lambda s: [m["traits"]["name"] for story in s for m in story if m["type"] == "identify" and "userId" in m]  # noqa: E731
    assert names(_shop(50, seed=1)) != names(_shop(50, seed=2))


def test_every_customer_has_a_vietnamese_name_and_a_valid_unique_mobile_number(shop):
    identifies = [next(m for m in story if m["type"] == "identify") for story in shop]
    assert all(m["traits"]["name"].split()[0] in FAMILY for m in identifies)
    phones = [m["traits"]["phone"].replace(" ", "") for m in identifies]
    assert all(len(p) == 10 and p.startswith("0") for p in phones)
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(p, "VN")) for p in phones)
    assert len(set(phones)) == len(phones)


def test_phone_numbers_never_repeat_across_a_million_customers():
    numbers = {phone_number(i, 42) for i in range(0, 1_000_000, 7)}
    assert len(numbers) == len(range(0, 1_000_000, 7))


def test_customers_arrive_through_every_acquisition_channel_with_realistic_shares(shop):
    channels = Counter(next(m for m in s if m["type"] == "identify")["traits"]["acquisition_channel"] for s in shop)
    assert set(channels) == {"facebook", "zalo", "google", "referral", "walk-in"}
    assert channels["facebook"] > channels["referral"]
    sources = {m["context"]["campaign"]["source"] for s in shop for m in s}
    assert {"facebook", "zalo", "google", "referral", "walk-in"} <= sources


def test_a_realistic_share_buys_again_at_rates_that_differ_between_customers(shop):
    orders = np.array([len(_orders(s)) for s in shop])
    buyers = orders[orders > 0]
    assert 0.6 < len(buyers) / len(shop) < 0.95
    assert 0.25 < (buyers >= 2).mean() < 0.7
    gaps = [np.mean(np.diff([m["timestamp"].timestamp() for m in _orders(s)])) / 86400
            for s in shop if len(_orders(s)) >= 3]
    assert np.std(gaps) / np.mean(gaps) > 0.5  # heterogeneous rates, not one clock for everyone


def test_orders_carry_vnd_totals_that_add_up(shop):
    for story in shop[:500]:
        for order in _orders(story):
            p = order["properties"]
            assert p["currency"] == "VND"
            assert p["subtotal"] == sum(i["price"] * i["quantity"] for i in p["products"])
            assert p["total"] == p["subtotal"] - p["discount"] + p["shipping"] > 0
            assert p["total"] % 1000 == 0
            assert 1 <= len(p["products"]) <= 4


def test_the_weeks_before_tet_are_busier_than_the_weeks_after_and_tet_itself_is_quiet(shop):
    days = Counter((m["timestamp"] + timedelta(hours=7)).date() for s in shop for m in _orders(s))
    tet = max(d for d in tet_days(range(2024, 2026)) if d < NOW.date())  # Tết 2025, a year into the history
    before = sum(days[tet - timedelta(days=k)] for k in range(1, 15)) / 14
    during = sum(days[tet + timedelta(days=k)] for k in range(0, 4)) / 4
    after = sum(days[tet + timedelta(days=k)] for k in range(10, 40)) / 30  # the customer base only grows
    assert before > 1.3 * after
    assert during < 0.6 * after


def test_history_stays_within_the_eighteen_months_before_now(shop):
    times = [m["timestamp"] for s in shop for m in s]
    assert min(times) >= NOW - timedelta(days=550)
    assert max(times) <= NOW


def test_message_ids_are_unique(shop):
    ids = [m["messageId"] for s in shop for m in s]
    assert len(set(ids)) == len(ids)


def test_a_very_large_shop_leaves_out_browsing_only_visits():
    assert not ShopSpec(customers=LEAN_ABOVE + 1).with_browsing
    lean = _shop(300, browsing=False)
    full = _shop(300)
    assert sum(map(len, lean)) < 0.8 * sum(map(len, full))
    assert [_orders(s) for s in lean] != [] and sum(len(_orders(s)) for s in lean) > 0


def test_a_shop_needs_customers_and_an_aware_now():
    with pytest.raises(ValueError, match="customers"):
        ShopSpec(customers=0)
    with pytest.raises(ValueError, match="aware"):
        ShopSpec(now=datetime(2025, 1, 1))
