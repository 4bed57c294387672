"""The sales reports page: funnel tables and their chart data, time in stage, the two scores on closed deals,
the forecast per owner, the learned model's holdout (AUC, calibration plot), in English and Vietnamese."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from clm.lib.clock import utcnow
from clm.sales.leads import LeadIn, capture_lead
from clm.sales.models import LeadScoreModel
from clm.sales.opportunities import DealIn, convert_lead, lose, move_stage, win
from tests.dashboard.conftest import token_of

_phones = iter(range(10_000, 99_999))


def a_lead(db, source="web_form", campaign=None, at=None):
    return capture_lead(db, LeadIn(phone=f"09130{next(_phones)}", source=source, campaign=campaign),
                        now=at, score=False, first_contact_minutes=0).lead


def chart_data(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1))


def row_of(html: str, table_id: str, key: str) -> list[str]:
    table = html.split(f'id="{table_id}"')[1].split("</table>")[0]
    row = table.split(f'data-key="{key}"')[1].split("</tr>")[0]
    return re.findall(r'<td class="num">([^<]*)</td>', row)


def test_the_reports_page_shows_the_funnel_by_source_and_campaign_with_rates_and_charts(db, as_role):
    now = utcnow()
    won = convert_lead(db, a_lead(db, campaign="tet-2026").id, DealIn(value=9_000_000))
    win(db, won.id)
    lost = convert_lead(db, a_lead(db, campaign="tet-2026").id, DealIn(value=4_000_000))
    lose(db, lost.id, reason="Giá cao")
    a_lead(db, "zalo")
    a_lead(db, "zalo", at=now - timedelta(days=800))  # outside the last 12 months
    db.commit()
    client = as_role("sales")
    html = client.get("/sales/reports").text
    assert row_of(html, "funnel-by-source", "web_form") == ["2", "2", "2", "2", "1", "1", "100.0%", "50.0%"]
    assert row_of(html, "funnel-by-source", "zalo")[:1] == ["1"]
    assert row_of(html, "funnel-by-campaign", "tet-2026")[0] == "2" and "No campaign" in html
    data = chart_data(html)
    assert data["source"]["labels"] == ["Web form", "Zalo"]
    leads = next(s for s in data["source"]["series"] if s["name"] == "Leads")
    assert leads["data"] == [2, 1]
    assert "/static/vendor/chartjs/chart.umd.min.js" in html and 'id="chart-campaign"' in html
    everything = client.get("/sales/reports", params={"period": "all"}).text
    assert row_of(everything, "funnel-by-source", "zalo")[0] == "2"


def test_the_reports_page_shows_time_in_stage_the_owners_forecast_and_both_scores(db, as_role, user_factory):
    rep = user_factory("sales", email="rep-reports@shop.vn")
    rep.name = "Phan Thu"
    start = utcnow() - timedelta(days=10)
    deal = convert_lead(db, a_lead(db, at=start).id, DealIn(value=6_000_000, owner_id=rep.id), now=start)
    move_stage(db, deal.id, "qualified", now=start + timedelta(days=4))
    for score, points, outcome in [(0.9, 5.0, "won"), (0.2, 40.0, "lost")]:
        lead = a_lead(db)
        lead.score, lead.rule_points = score, points
        other = convert_lead(db, lead.id, DealIn(value=1_000_000))
        win(db, other.id) if outcome == "won" else lose(db, other.id, reason="Không cần")
    db.commit()
    html = as_role("manager").get("/sales/reports").text
    stages = html.split('id="time-in-stage"')[1]
    new = re.findall(r'<td class="num">([^<]*)</td>', stages.split('data-stage="new"')[1].split("</tr>")[0])
    qualified = re.findall(r'<td class="num">([^<]*)</td>', stages.split('data-stage="qualified"')[1].split("</tr>")[0])
    assert new[:3] == ["0", "3", "0"]  # 4 days for the first deal, none for the two closed at once: median 0
    assert qualified == ["—", "0", "1", "6"]  # one deal there for 6 days so far
    data = chart_data(html)
    assert "Phan Thu" in data["owners"]["labels"]
    weighted = data["owners"]["series"][0]["data"][data["owners"]["labels"].index("Phan Thu")]
    assert weighted == 6_000_000 * 25 // 100  # the qualified stage's 25 %
    assert "AUC 1.00" in html and "rule points with AUC 0.00" in html
    assert data["scores"]["series"][0]["data"] == [0.0, 1.0]


def test_the_learned_models_holdout_is_shown_with_its_calibration_plot(db, as_role):
    calibration = [{"predicted": 0.1, "observed": 0.12, "count": 40}, {"predicted": 0.6, "observed": 0.55, "count": 40}]
    db.add(LeadScoreModel(kind="learned", won=80, lost=120, auc=0.81, trained_at=utcnow(),
                          params={"evaluation": {"calibration": calibration, "rules_auc": 0.6}}))
    db.commit()
    html = as_role("sales").get("/sales/reports").text
    assert "AUC 0.81 on the held-out quarter of 80 won and 120 lost deals" in html
    assert chart_data(html)["calibration"]["points"] == [{"x": 0.1, "y": 0.12}, {"x": 0.6, "y": 0.55}]
    assert 'id="chart-calibration"' in html


def test_a_prior_model_says_it_has_too_few_deals_instead_of_a_plot(db, as_role):
    db.add(LeadScoreModel(kind="prior", won=3, lost=2, auc=None, trained_at=utcnow(), params={}))
    db.commit()
    html = as_role("sales").get("/sales/reports").text
    assert "Too few closed deals to learn from yet (3 won, 2 lost)" in html and 'id="chart-calibration"' not in html


def test_unknown_filters_fall_back_to_the_defaults(db, as_role):
    r = as_role("sales").get("/sales/reports", params={"period": "99", "pipeline": "x" * 30, "owner": "-1"})
    assert r.status_code == 200 and '<option value="12" selected' in r.text


@pytest.mark.parametrize("role,code", [("agent", 403), ("marketer", 403), ("sales", 200), ("manager", 200)])
def test_who_may_open_the_reports(as_role, role, code):
    assert as_role(role).get("/sales/reports").status_code == code


def test_the_reports_speak_vietnamese(db, as_role):
    client = as_role("sales")
    client.post("/locale", data={"locale": "vi", "csrf_token": token_of(client)})
    html = client.get("/sales/reports").text
    assert "Phễu theo nguồn" in html and "Thời gian ở mỗi giai đoạn" in html
