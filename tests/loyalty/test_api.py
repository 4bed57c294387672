"""/api/v1/loyalty: scopes, program and tiers, rewards, quote, redemption with idempotency, vouchers,
cancellation, adjustments, referrals; every refusal names its problem and applies nothing."""

from __future__ import annotations

import pytest

from clm.loyalty import ledger
from clm.loyalty.program import require_program
from clm.loyalty.verify import verify
from tests.loyalty.conftest import make_customer

BASE = "/api/v1/loyalty"


@pytest.fixture
def pos(api_key_for):
    return api_key_for("loyalty:read", "loyalty:write")


@pytest.fixture
def boss(api_key_for):
    return api_key_for("loyalty:read", "loyalty:write", "loyalty:manage")


@pytest.fixture
def setup(client, boss, db):
    r = client.put(f"{BASE}/program", json={"pending_days": 7, "expiry": "months", "expiry_months": 12,
                                            "point_value": 1000, "redeem_share_percent": 50}, headers=boss)
    assert r.status_code == 200, r.text
    return r.json()


def _member_with(db, points, **fields):
    from clm.lib.clock import utcnow

    customer = make_customer(db, **fields)
    if points:
        now = utcnow()
        member = ledger.lock_member(db, customer.id, now)
        ledger.credit(db, member, require_program(db), key=f"seed:{customer.id}", points=points, reason="seed",
                      source="staff", source_id=None, at=now, now=now)
    db.commit()
    return customer


def _reward(client, boss, **fields):
    body = {"name": "Voucher 50.000 ₫", "kind": "voucher", "points": 50, "value": 50_000, **fields}
    r = client.post(f"{BASE}/rewards", json=body, headers=boss)
    assert r.status_code == 201, r.text
    return r.json()


def _redeem(client, pos, key, **body):
    return client.post(f"{BASE}/redemptions", json=body, headers={**pos, "Idempotency-Key": key})


@pytest.mark.parametrize(("method", "path", "scope"), [
    ("get", "/program", "loyalty:read"), ("put", "/program", "loyalty:manage"), ("put", "/tiers", "loyalty:manage"),
    ("post", "/rules", "loyalty:manage"), ("get", "/members/1", "loyalty:read"),
    ("post", "/members/1/adjustments", "loyalty:manage"), ("post", "/rewards", "loyalty:manage"),
    ("post", "/quote", "loyalty:write"), ("post", "/redemptions", "loyalty:write"),
    ("post", "/redemptions/1/cancel", "loyalty:write"), ("post", "/vouchers/consume", "loyalty:write"),
    ("post", "/referrals", "loyalty:write"),
])
def test_every_endpoint_needs_its_scope(client, api_key_for, method, path, scope):
    assert client.request(method, f"{BASE}{path}").status_code == 401
    other = api_key_for("customers:read")
    r = client.request(method, f"{BASE}{path}", headers=other)
    assert r.status_code == 403 and scope in r.json()["error"]["message"]


def test_setting_up_the_program_installs_the_vietnamese_tiers(client, setup, pos):
    tiers = client.get(f"{BASE}/tiers", headers=pos).json()["tiers"]
    assert [t["name"] for t in tiers] == ["Thành viên", "Bạc", "Vàng", "Kim cương"]


def test_overlapping_tiers_are_refused_with_the_field(client, setup, boss):
    r = client.put(f"{BASE}/tiers", headers=boss, json={"tiers": [
        {"key": "member", "name": "Thành viên", "threshold": 0}, {"key": "gold", "name": "Vàng", "threshold": 0}]})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "tiers[1].threshold" and "overlaps" in r.json()["error"]["message"]


def test_a_rule_that_cannot_be_parsed_is_refused_naming_the_field(client, setup, boss):
    r = client.post(f"{BASE}/rules", headers=boss, json={"name": "x", "kind": "spend", "config": {"per_amount": -5}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "config.per_amount"
    ok = client.post(f"{BASE}/rules", headers=boss, json={"name": "1/10k", "kind": "spend", "config": {}})
    assert ok.status_code == 201 and ok.json()["config"]["per_amount"] == 10_000


def test_a_voucher_reward_without_a_value_is_refused(client, setup, boss):
    r = client.post(f"{BASE}/rewards", headers=boss, json={"name": "v", "kind": "voucher", "points": 10})
    assert r.status_code == 422 and "needs `value`" in r.json()["error"]["message"]


def test_redeeming_issues_a_single_use_code_and_a_repeat_returns_the_first_result(client, db, setup, boss, pos):
    an = _member_with(db, 120)
    reward = _reward(client, boss)
    first = _redeem(client, pos, "pos-1-a", customer_id=an.id, reward_id=reward["id"])
    assert first.status_code == 201, first.text
    again = _redeem(client, pos, "pos-1-a", customer_id=an.id, reward_id=reward["id"])
    assert again.status_code == 200 and again.json()["code"] == first.json()["code"]
    assert len(first.json()["code"]) == 16
    assert client.get(f"{BASE}/members/{an.id}", headers=pos).json()["available"] == 70
    other = _redeem(client, pos, "pos-1-a", customer_id=an.id, points=10, cart_total=100_000)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_redeeming_more_than_the_balance_is_a_conflict_that_changes_nothing(client, db, setup, boss, pos):
    an = _member_with(db, 40)
    reward = _reward(client, boss, stock=5)
    r = _redeem(client, pos, "k1", customer_id=an.id, reward_id=reward["id"])
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "insufficient_points" and "40 points available" in r.json()["error"]["message"]
    assert client.get(f"{BASE}/members/{an.id}", headers=pos).json()["available"] == 40
    assert client.get(f"{BASE}/rewards", headers=pos).json()["data"][0]["stock"] == 5


@pytest.mark.parametrize(("fields", "code"), [
    ({"stock": 0}, "reward_unavailable"), ({"tiers": ["gold"]}, "reward_unavailable"),
    ({"active": False}, "reward_unavailable"),
])
def test_a_reward_out_of_stock_or_not_for_this_tier_is_refused(client, db, setup, boss, pos, fields, code):
    an = _member_with(db, 500)
    reward = _reward(client, boss, **fields)
    r = _redeem(client, pos, "k", customer_id=an.id, reward_id=reward["id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == code


def test_the_per_member_limit_counts_uncancelled_redemptions(client, db, setup, boss, pos):
    an = _member_with(db, 500)
    reward = _reward(client, boss, per_member_limit=1)
    assert _redeem(client, pos, "a", customer_id=an.id, reward_id=reward["id"]).status_code == 201
    second = _redeem(client, pos, "b", customer_id=an.id, reward_id=reward["id"])
    assert second.status_code == 409 and second.json()["error"]["code"] == "limit_reached"


def test_a_quote_keeps_points_within_the_share_cap(client, db, setup, pos):
    an = _member_with(db, 500)
    q = client.post(f"{BASE}/quote", headers=pos, json={"customer_id": an.id, "cart_total": 300_000}).json()
    assert (q["available"], q["max_points"], q["discount"]) == (500, 150, 150_000)
    over = _redeem(client, pos, "k", customer_id=an.id, points=151, cart_total=300_000)
    assert over.status_code == 409 and over.json()["error"]["code"] == "over_cap"
    ok = _redeem(client, pos, "k2", customer_id=an.id, points=150, cart_total=300_000)
    assert ok.status_code == 201 and ok.json()["value"] == 150_000


def test_a_voucher_is_validated_and_consumed_once(client, db, setup, boss, pos):
    an = _member_with(db, 100)
    reward = _reward(client, boss, kind="percent", value=None, percent=10, max_discount=30_000)
    code = _redeem(client, pos, "k", customer_id=an.id, reward_id=reward["id"]).json()["code"]
    v = client.post(f"{BASE}/vouchers/validate", headers=pos, json={"code": code, "order_total": 500_000})
    assert v.status_code == 200 and v.json()["discount"] == 30_000  # 10% of 500,000 capped at 30,000
    used = client.post(f"{BASE}/vouchers/consume", headers=pos,
                       json={"code": code, "order_total": 200_000, "order_id": "SO-9"})
    assert used.status_code == 200 and used.json()["discount"] == 20_000
    retry = client.post(f"{BASE}/vouchers/consume", headers=pos,
                        json={"code": code, "order_total": 200_000, "order_id": "SO-9"})
    assert retry.status_code == 200 and retry.json()["discount"] == 20_000
    twice = client.post(f"{BASE}/vouchers/consume", headers=pos,
                        json={"code": code, "order_total": 200_000, "order_id": "SO-10"})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "voucher_used"
    unknown = client.post(f"{BASE}/vouchers/validate", headers=pos, json={"code": "NOPE", "order_total": 1})
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "voucher_unknown"
    cancel = client.post(f"{BASE}/redemptions/{used.json()['redemption']['id']}/cancel", headers=pos)
    assert cancel.status_code == 409 and cancel.json()["error"]["code"] == "voucher_used"


def test_an_expired_voucher_is_refused(client, db, setup, boss, pos):
    from datetime import timedelta

    import sqlalchemy as sa

    from clm.loyalty.models import Redemption

    an = _member_with(db, 100)
    code = _redeem(client, pos, "k", customer_id=an.id, reward_id=_reward(client, boss)["id"]).json()["code"]
    from clm.lib.clock import utcnow

    db.execute(sa.update(Redemption).values(expires_at=utcnow() - timedelta(days=1)))
    db.commit()
    r = client.post(f"{BASE}/vouchers/validate", headers=pos, json={"code": code, "order_total": 100_000})
    assert r.status_code == 409 and r.json()["error"]["code"] == "voucher_expired"


def test_cancelling_a_redemption_gives_the_points_back(client, db, setup, boss, pos):
    an = _member_with(db, 100)
    reward = _reward(client, boss, stock=3)
    redemption = _redeem(client, pos, "k", customer_id=an.id, reward_id=reward["id"]).json()
    r = client.post(f"{BASE}/redemptions/{redemption['id']}/cancel", headers=pos)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    member = client.get(f"{BASE}/members/{an.id}", headers=pos).json()
    assert (member["available"], member["redeemed"]) == (100, 0)
    assert client.get(f"{BASE}/rewards", headers=pos).json()["data"][0]["stock"] == 3
    code = redemption["code"]
    dead = client.post(f"{BASE}/vouchers/validate", headers=pos, json={"code": code, "order_total": 1})
    assert dead.json()["error"]["code"] == "voucher_cancelled"
    assert verify(db) == []


def test_an_adjustment_needs_a_reason_and_cannot_take_more_than_is_available(client, db, setup, boss):
    an = _member_with(db, 30)
    url = f"{BASE}/members/{an.id}/adjustments"
    blank = client.post(url, headers=boss, json={"points": 10, "reason": " ", "idempotency_key": "a"})
    assert blank.status_code == 422 and blank.json()["error"]["field"] == "reason"
    over = client.post(url, headers=boss, json={"points": -31, "reason": "sai", "idempotency_key": "b"})
    assert over.status_code == 409
    ok = client.post(url, headers=boss, json={"points": 20, "reason": "Khiếu nại", "idempotency_key": "c"})
    assert ok.status_code == 200 and ok.json()["available"] == 50
    again = client.post(url, headers=boss, json={"points": 20, "reason": "Khiếu nại", "idempotency_key": "c"})
    assert again.json()["available"] == 50
    history = client.get(f"{BASE}/members/{an.id}/history", headers=boss).json()["data"]
    assert history[0]["reason"] == "Khiếu nại" and history[0]["source"] == "staff"


def test_a_fractional_point_count_is_refused(client, db, setup, pos):
    an = _member_with(db, 30)
    r = _redeem(client, pos, "k", customer_id=an.id, points=1.5, cart_total=100_000)
    assert r.status_code == 422 and r.json()["error"]["field"] == "points"


def test_referral_codes_and_self_referral(client, db, setup, pos):
    an = _member_with(db, 0, email="an@example.vn", phone="+84901234567")
    code = client.get(f"{BASE}/members/{an.id}/referrals", headers=pos).json()["code"]
    twin = _member_with(db, 0, phone="+84901234567")
    r = client.post(f"{BASE}/referrals", headers=pos, json={"code": code, "customer_id": twin.id})
    assert r.status_code == 422 and r.json()["error"]["code"] == "self_referral"
    binh = _member_with(db, 0, email="binh@example.vn")
    ok = client.post(f"{BASE}/referrals", headers=pos, json={"code": code.lower(), "customer_id": binh.id})
    assert ok.status_code == 201 and ok.json()["status"] == "waiting"
    repeat = client.post(f"{BASE}/referrals", headers=pos, json={"code": code, "customer_id": binh.id})
    assert repeat.status_code == 422 and repeat.json()["error"]["code"] == "already_referred"
    mine = client.get(f"{BASE}/members/{an.id}/referrals", headers=pos).json()
    assert [x["customer_id"] for x in mine["referred"]] == [binh.id]


def test_without_a_program_the_api_says_how_to_start_one(client, pos):
    r = client.get(f"{BASE}/program", headers=pos)
    assert r.status_code == 409 and "PUT /api/v1/loyalty/program" in r.json()["error"]["message"]
