"""Sales reports: the funnel by source and campaign with its rates, the median time in each stage from the
stage changes, and the rule points against the learned score on the deals that closed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from clm.sales.leads import LeadIn, LeadUpdate, capture_lead, update_lead
from clm.sales.opportunities import DealIn, convert_lead, lose, move_stage, win
from clm.sales.pipelines import default_pipeline
from clm.sales.reports import TOP_CAMPAIGNS, funnel, scores_against_outcomes, time_in_stage
from tests.customers.shop import T0

_phones = iter(range(10_000, 99_999))


def a_lead(db, source="web_form", campaign=None, at=T0, owner_id=None):
    return capture_lead(db, LeadIn(phone=f"09120{next(_phones)}", source=source, campaign=campaign, owner_id=owner_id),
                        now=at, score=False, first_contact_minutes=0).lead


def a_deal(db, lead, at=T0, value=1_000_000):
    return convert_lead(db, lead.id, DealIn(value=value), now=at)


def test_the_funnel_by_source_counts_each_step_and_its_conversion_and_win_rates(db):
    won, lost, new = a_lead(db), a_lead(db), a_lead(db)
    win(db, a_deal(db, won).id, now=T0 + timedelta(days=3))
    lose(db, a_deal(db, lost).id, reason="Giá cao", now=T0 + timedelta(days=3))
    qualified, unqualified = a_lead(db, "zalo"), a_lead(db, "zalo")
    update_lead(db, qualified.id, LeadUpdate(status="qualified"))
    update_lead(db, unqualified.id, LeadUpdate(status="unqualified", unqualified_reason="Sai số"))
    report = funnel(db, "source")
    rows = {r["key"]: r for r in report["rows"]}
    assert [r["key"] for r in report["rows"]] == ["web_form", "zalo"]  # most leads first
    web, zalo = rows["web_form"], rows["zalo"]
    assert (web["leads"], web["contacted"], web["qualified"], web["converted"], web["won"], web["lost"]) == \
        (3, 2, 2, 2, 1, 1)
    assert web["conversion_rate"] == pytest.approx(2 / 3) and web["win_rate"] == 0.5
    assert (zalo["leads"], zalo["contacted"], zalo["qualified"], zalo["converted"]) == (2, 1, 1, 0)
    assert zalo["conversion_rate"] == 0 and zalo["win_rate"] is None  # no closed deal: no rate, not 0 %
    assert report["total"]["leads"] == 5 and report["total"]["won"] == 1
    assert new.status == "new"


def test_the_funnel_counts_only_the_leads_that_came_in_the_window_and_of_the_owner(db, user_factory):
    rep = user_factory("sales", email="rep-funnel@shop.vn")
    a_lead(db, at=T0 - timedelta(days=40))
    a_lead(db, at=T0, owner_id=rep.id)
    a_lead(db, at=T0 + timedelta(days=1))
    assert funnel(db, since=T0, until=T0 + timedelta(days=1))["total"]["leads"] == 1
    assert funnel(db, since=T0)["total"]["leads"] == 2
    assert funnel(db, owner_id=rep.id)["total"]["leads"] == 1


def test_the_funnel_by_campaign_groups_leads_without_one_and_sums_the_smallest_campaigns(db):
    for i in range(TOP_CAMPAIGNS + 2):
        for _ in range(2 if i < TOP_CAMPAIGNS else 1):
            a_lead(db, campaign=f"camp-{i:02d}")
    a_lead(db)
    a_lead(db)
    a_lead(db)
    report = funnel(db, "campaign")
    assert report["rows"][0]["key"] == "" and report["rows"][0]["leads"] == 3
    assert len(report["rows"]) == TOP_CAMPAIGNS + 1
    other = report["rows"][-1]
    assert other["key"] is None and other["groups"] == 3 and other["leads"] == 1 + 1 + 2
    assert report["total"]["leads"] == 2 * TOP_CAMPAIGNS + 2 + 3


def test_time_in_stage_is_the_median_of_the_finished_stays_and_counts_the_deals_still_there(db):
    pipeline = default_pipeline(db)
    fast = a_deal(db, a_lead(db))
    move_stage(db, fast.id, "qualified", now=T0 + timedelta(days=2))
    move_stage(db, fast.id, "proposal", now=T0 + timedelta(days=5))
    win(db, fast.id, now=T0 + timedelta(days=6))
    slow = a_deal(db, a_lead(db))
    move_stage(db, slow.id, "qualified", now=T0 + timedelta(days=4))
    waiting = a_deal(db, a_lead(db), at=T0 + timedelta(days=8))
    stages = {s["key"]: s for s in time_in_stage(db, pipeline.id, now=T0 + timedelta(days=10))}
    assert "won" not in stages and "lost" not in stages
    assert (stages["new"]["stays"], stages["new"]["median_days"]) == (2, pytest.approx(3.0))
    assert (stages["new"]["open_now"], stages["new"]["median_open_days"]) == (1, pytest.approx(2.0))
    assert (stages["qualified"]["stays"], stages["qualified"]["median_days"]) == (1, pytest.approx(3.0))
    assert (stages["qualified"]["open_now"], stages["qualified"]["median_open_days"]) == (1, pytest.approx(6.0))
    assert (stages["proposal"]["stays"], stages["proposal"]["median_days"]) == (1, pytest.approx(1.0))
    assert stages["negotiation"]["median_days"] is None
    later = {s["key"]: s for s in time_in_stage(db, pipeline.id, since=T0 + timedelta(days=3))}
    assert later["new"]["stays"] == 1 and later["new"]["median_days"] == pytest.approx(4.0)
    assert waiting.status == "open"


def test_the_scores_are_judged_on_the_deals_that_closed(db):
    # The learned score ranks the won deals first; the rule points rank them backwards.
    for i, outcome in enumerate(["lost", "lost", "lost", "won", "won"]):
        lead = a_lead(db)
        lead.score, lead.rule_points = 0.1 + 0.2 * i, 50.0 - 10 * i
        deal = a_deal(db, lead)
        if outcome == "won":
            win(db, deal.id)
        else:
            lose(db, deal.id, reason="Không cần")
    still_open = a_lead(db)
    still_open.score, still_open.rule_points = 0.99, 0.0
    a_deal(db, still_open)
    db.flush()
    report = scores_against_outcomes(db)
    assert (report["deals"], report["won"]) == (5, 2)
    assert report["auc_learned"] == 1.0 and report["auc_rules"] == 0.0
    assert [b["won_rate"] for b in report["learned"]] == [0, 0, 0, 1, 1]
    assert [b["won_rate"] for b in report["rules"]] == [1, 1, 0, 0, 0]
    assert sum(b["count"] for b in report["learned"]) == 5


def test_with_no_closed_deal_the_scores_report_says_nothing_rather_than_guess(db):
    report = scores_against_outcomes(db)
    assert report == {"deals": 0, "won": 0, "auc_learned": None, "auc_rules": None, "learned": [], "rules": []}


def test_the_reports_api_gives_the_funnel_stages_and_scores_and_refuses_bad_filters(client, api_key_for):
    headers = api_key_for("sales:read", "sales:write")
    lead = client.post("/api/v1/leads", json={"phone": "0913444555", "source": "referral", "campaign": "hè"},
                       headers=headers).json()["lead"]
    deal = client.post(f"/api/v1/leads/{lead['id']}/convert", json={"value": 2_000_000}, headers=headers).json()
    client.post(f"/api/v1/opportunities/{deal['id']}/lose", json={"reason": "đắt"}, headers=headers)
    r = client.get("/api/v1/sales/reports", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    [row] = body["funnel_by_source"]["rows"]
    assert (row["key"], row["leads"], row["converted"], row["lost"], row["win_rate"]) == ("referral", 1, 1, 1, 0.0)
    assert body["funnel_by_campaign"]["rows"][0]["key"] == "hè"
    assert [s["key"] for s in body["time_in_stage"]][:2] == ["new", "qualified"]
    assert body["time_in_stage"][0]["stays"] == 1
    assert client.get("/api/v1/sales/reports", params={"since": "2999-01-01T00:00:00"},
                      headers=headers).json()["funnel_by_source"]["rows"] == []
    bad = client.get("/api/v1/sales/reports", params={"since": "yesterday"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "since"
    missing = client.get("/api/v1/sales/reports", params={"pipeline_id": 987654}, headers=headers)
    assert missing.status_code == 404
