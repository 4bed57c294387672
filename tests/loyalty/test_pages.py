"""The loyalty pages through a browser (TestClient), on SQLite and PostgreSQL: the member's own page behind a
signed, expiring link; staff adjustments (reason required, once per form, audited); the program's forms
refusing bad input by name; the reports with the program's figures."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from clm.loyalty import ledger, links
from clm.loyalty.models import Audit, Entry, Reward, Rule, Tier
from clm.loyalty.program import require_program
from clm.loyalty.rewards import RewardIn, save_reward
from clm.loyalty.tiers import DEFAULT_TIERS, TierIn, save_tiers
from clm.loyalty.verify import verify
from tests.dashboard.conftest import as_role, browser, cheap_hashing, token_of, user_factory  # noqa: F401
from tests.loyalty.conftest import T0, make_customer

NOW = T0 + timedelta(days=40)


@pytest.fixture
def world(db, app, program):
    """A member with 250 available points (100 of them expiring within 30 days), 40 pending, on Bạc."""
    save_tiers(db, [TierIn(**t) for t in DEFAULT_TIERS])
    save_reward(db, RewardIn(name="Phiếu giảm 50.000 ₫", kind="voucher", points=200, value=50_000))
    save_reward(db, RewardIn(name="Bình giữ nhiệt", kind="gift", points=900))
    lan = make_customer(db, full_name="Trần Thị Lan")
    p = require_program(db)
    member = ledger.lock_member(db, lan.id, T0)
    ledger.credit(db, member, p, key="t:1", points=100, reason="Đơn SO-1", source="order", source_id="1",
                  at=T0, now=T0, pending=False)  # expires 2 months on: inside 30 days of NOW
    ledger.credit(db, member, p, key="t:2", points=150, reason="Đơn SO-2", source="order", source_id="2",
                  at=NOW - timedelta(days=1), now=NOW - timedelta(days=1), pending=False)
    ledger.credit(db, member, p, key="t:3", points=40, reason="Đơn SO-3", source="order", source_id="3",
                  at=NOW - timedelta(days=1), now=NOW - timedelta(days=1), pending=True)
    member.tier = "silver"
    db.commit()
    app.state.dashboard_clock = lambda: NOW
    return lan


def test_the_member_page_opens_from_a_signed_link_in_vietnamese_with_balance_expiry_tier_and_rewards(
        db, app, browser, world):  # noqa: F811
    url = links.member_url(app.state.settings, world.id, NOW)
    r = browser().get(url[url.index("/m/"):])
    assert r.status_code == 200
    html = r.text
    assert 'lang="vi"' in html and "Xin chào Trần Thị Lan" in html
    assert re.search(r'id="available">250<', html) and "40 điểm đang về" in html
    assert re.search(r'id="tier">Bạc<', html)
    assert "100 điểm" in html and "hết hạn ngày" in html  # the lot earned at T0 expires within 30 days
    assert "Phiếu giảm 50.000 ₫" in html and "Bình giữ nhiệt" not in html  # 900 points: out of reach
    code = db.scalar(sa.text("select referral_code from loyalty_members where customer_id = :c"), {"c": world.id})
    assert code and code in html
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"


def test_the_member_page_switches_to_english(app, browser, world):  # noqa: F811
    token = links.member_token(links.member_key(app.state.settings), world.id, NOW)
    r = browser().get(f"/m/{token}?lang=en")
    assert 'lang="en"' in r.text and "Your points" in r.text


def test_an_edited_link_shows_nobody_and_an_old_link_has_expired(app, browser, world):  # noqa: F811
    key = links.member_key(app.state.settings)
    token = links.member_token(key, world.id, NOW)
    body, mac = token.split(".")
    other = links.member_token(key, world.id + 1, NOW).split(".")[0]
    client = browser()
    r = client.get(f"/m/{other}.{mac}")
    assert r.status_code == 404 and "Trần Thị Lan" not in r.text
    old = links.member_token(key, world.id, NOW - timedelta(days=200), days=90)
    r = client.get(f"/m/{old}")
    assert r.status_code == 410 and "hết hạn" in r.text and "Trần Thị Lan" not in r.text


def adjust(client, customer_id, **data):
    return client.post(f"/loyalty/members/{customer_id}/adjust", data={**data, "csrf_token": token_of(client)})


def test_a_manager_adjusts_points_with_a_reason_once_per_form_and_it_is_audited(db, as_role, world):  # noqa: F811
    client = as_role("manager")
    page = client.get(f"/loyalty/members/{world.id}")
    assert page.status_code == 200 and "Adjust points" in page.text
    key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)
    r = adjust(client, world.id, points="-30", reason="Khách trả hàng ngoài hệ thống", key=key)
    assert r.status_code == 303
    again = adjust(client, world.id, points="-30", reason="Khách trả hàng ngoài hệ thống", key=key)
    assert again.status_code == 303  # the same form posted twice
    db.expire_all()
    entries = db.scalars(sa.select(Entry).where(Entry.customer_id == world.id, Entry.kind == "adjust")).all()
    assert [(e.available, e.source, e.reason) for e in entries] == [
        (-30, "staff", "Khách trả hàng ngoài hệ thống")]
    [audit] = db.scalars(sa.select(Audit)).all()
    assert (audit.user_email, audit.action, audit.target, audit.details["points"]) == (
        "manager@shop.vn", "adjust", f"customer:{world.id}", -30)
    assert re.search(r'id="available">220<', client.get(f"/loyalty/members/{world.id}").text)
    assert verify(db) == []


@pytest.mark.parametrize("data,field,status", [
    ({"points": "50", "reason": "  "}, "reason", 422),
    ({"points": "1.5", "reason": "Quà"}, "points", 422),
    ({"points": "0", "reason": "Quà"}, "points", 422),
    ({"points": "-999", "reason": "Quà"}, "points", 409),
])
def test_a_bad_adjustment_is_refused_by_name_and_changes_nothing(db, as_role, world, data, field, status):  # noqa: F811
    r = adjust(as_role("admin"), world.id, key="k-1", **data)
    assert r.status_code == status
    assert re.search(rf'id="adjust-error">{field}: ', r.text), r.text[-2000:]
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(Entry).where(Entry.kind == "adjust")) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(Audit)) == 0


def post(client, path, data):
    return client.post(path, data={**data, "csrf_token": token_of(client)})


def test_overlapping_tiers_are_refused_naming_the_tier_and_the_ladder_stays(db, as_role, world):  # noqa: F811
    r = post(as_role("admin"), "/loyalty/tiers", {
        "count": "2", "tiers.0.key": "member", "tiers.0.name": "Thành viên", "tiers.0.threshold": "0",
        "tiers.0.earn_percent": "100", "tiers.1.key": "gold", "tiers.1.name": "Vàng", "tiers.1.threshold": "0",
        "tiers.1.earn_percent": "100"})
    assert r.status_code == 422 and "tiers[1].threshold" in r.text and "overlaps" in r.text
    db.expire_all()
    assert db.scalar(sa.select(sa.func.count()).select_from(Tier)) == 4


def test_a_rule_whose_config_cannot_be_parsed_is_refused_with_its_path(db, as_role, world):  # noqa: F811
    client = as_role("admin")
    r = post(client, "/loyalty/rules", {"name": "Lỗi", "kind": "spend", "config": "{points: 1"})
    assert r.status_code == 422 and "config: is not JSON" in r.text
    r = post(client, "/loyalty/rules", {"name": "Lỗi", "kind": "spend", "config": '{"rounding": "sideways"}'})
    assert r.status_code == 422 and "config.rounding" in r.text
    r = post(client, "/loyalty/rules", {"name": "Cuối tuần x2", "kind": "multiplier", "active": "1",
                                        "config": '{"percent": 200}', "starts_at": "2025-04-05",
                                        "ends_at": "2025-04-07"})
    assert r.status_code == 303
    page = client.get("/loyalty/program").text
    assert "Cuối tuần x2" in page and 'value="2025-04-05"' in page


def test_rules_and_rewards_are_added_and_changed_from_their_forms_audited_and_an_unknown_one_is_404(
        db, as_role, world):  # noqa: F811
    client = as_role("admin")
    spend = {"name": "Mỗi 10.000 ₫", "kind": "spend", "active": "1",
             "config": '{"points": 1, "per_amount": 10000}'}
    r = post(client, "/loyalty/rules", spend)
    assert r.status_code == 303 and r.headers["location"] == "/loyalty/program?saved=rules#rules"
    rule_id = db.scalar(sa.select(Rule.id).where(Rule.name == "Mỗi 10.000 ₫"))
    r = post(client, f"/loyalty/rules/{rule_id}", {"name": "Mỗi 20.000 ₫", "kind": "spend",
                                                   "config": '{"points": 1, "per_amount": 20000}'})
    assert r.status_code == 303
    db.expire_all()
    rule = db.get(Rule, rule_id)
    assert (rule.name, rule.active, rule.config["per_amount"]) == ("Mỗi 20.000 ₫", False, 20000)
    r = post(client, f"/loyalty/rules/{rule_id}", {"name": "Đổi tên", "kind": "spend", "config": "[1]"})
    assert r.status_code == 422 and "config: must be a JSON object" in r.text and 'value="Đổi tên"' in r.text
    assert f'id="rule-{rule_id}"' in r.text
    assert post(client, "/loyalty/rules/999999", spend).status_code == 404

    r = post(client, "/loyalty/rewards", {"name": "Ly sứ", "kind": "gift", "points": "1.500",
                                          "tiers": ["silver", "gold"], "active": "1"})
    assert r.status_code == 303 and r.headers["location"] == "/loyalty/program?saved=rewards#rewards"
    reward_id = db.scalar(sa.select(Reward.id).where(Reward.name == "Ly sứ"))
    r = post(client, f"/loyalty/rewards/{reward_id}", {"name": "Ly sứ lớn", "kind": "gift", "points": "2000"})
    assert r.status_code == 303
    db.expire_all()
    reward = db.get(Reward, reward_id)
    assert (reward.name, reward.points, reward.tiers, reward.active) == ("Ly sứ lớn", 2000, [], False)
    r = post(client, f"/loyalty/rewards/{reward_id}", {"name": "Ly sứ lớn", "kind": "gift", "points": "nhiều"})
    assert r.status_code == 422 and "points: must be a whole number" in r.text and 'value="nhiều"' in r.text
    assert post(client, "/loyalty/rewards/999999", {"name": "Ly", "kind": "gift", "points": "10"}).status_code == 404
    db.expire_all()
    assert db.get(Reward, reward_id).points == 2000
    done = [(a.action, a.target) for a in db.scalars(sa.select(Audit).order_by(Audit.id))]
    assert done == [("rule", f"rule:{rule_id}")] * 2 + [("reward", f"reward:{reward_id}")] * 2


def test_program_settings_refuse_a_bad_value_by_name(db, as_role, world):  # noqa: F811
    r = post(as_role("admin"), "/loyalty/program", {"name": "Thân thiết", "pending_days": "-3"})
    assert r.status_code == 422 and "pending_days" in r.text
    db.expire_all()
    assert require_program(db).pending_days == 7


def test_the_reports_show_outstanding_points_liability_and_rates(db, as_role, world):  # noqa: F811
    marketer = as_role("marketer")
    r = marketer.get("/loyalty")
    assert r.status_code == 200
    html = r.text
    assert re.search(r'id="outstanding">290<', html)  # 250 available + 40 pending
    assert re.search(r'id="liability">[^<]*290[.,]000', html)  # 1 point = 1,000 VND
    assert 'id="chart-data"' in html and "/static/vendor/chartjs/chart.umd.min.js" in html
    member_page = marketer.get(f"/loyalty/members/{world.id}")
    assert member_page.status_code == 200 and "Adjust points" not in member_page.text
