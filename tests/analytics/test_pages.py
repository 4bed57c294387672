"""The analytics pages, the 360's scores card and the analytics API, filled by a refresh and empty before one."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from clm.analytics.models import CustomerScore
from clm.analytics.refresh import refresh
from tests.analytics.shop_orders import NOW, TZ, build_shop

PAGES = ["/analytics/clv", "/analytics/rfm", "/analytics/cohorts", "/analytics/fit"]
ALLOWED = ["admin", "manager", "marketer"]


@pytest.fixture
def scored(db):
    book = build_shop(db)
    run = refresh(db, NOW, currency="VND", timezone=TZ)
    db.commit()
    return book, run


def _best(db) -> CustomerScore:
    return db.scalar(sa.select(CustomerScore).order_by(CustomerScore.predicted_clv_12m.desc().nulls_last()).limit(1))


@pytest.mark.parametrize("role", ALLOWED)
@pytest.mark.parametrize("path", PAGES)
def test_each_page_says_how_to_fill_it_before_the_first_refresh(as_role, role, path):
    r = as_role(role).get(path)
    assert r.status_code == 200
    assert "No scores yet" in r.text and "clm analytics refresh" in r.text


@pytest.mark.parametrize("role", ["sales", "agent"])
def test_roles_without_analytics_get_a_403_page_and_no_nav_link(as_role, role):
    client = as_role(role)
    assert client.get("/analytics/clv").status_code == 403
    assert 'href="/analytics/clv"' not in client.get("/customers").text


@pytest.mark.parametrize("role", ALLOWED)
def test_the_clv_page_shows_totals_the_distribution_and_the_top_customers_linked_to_the_360(as_role, db, scored, role):
    _, run = scored
    html = as_role(role).get("/analytics/clv").text
    best = _best(db)
    assert f'href="/customers/{best.customer_id}"' in html
    assert "Top 50 customers by predicted value" in html and 'id="chart-clv"' in html
    assert "Computed with BG/NBD as of" in html
    assert html.count('<tr><td><a href="/customers/') == min(50, run.customers_scored)
    data = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S).group(1)
    assert sum(int(n) for n in re.findall(r"\d+", data.split('"values": [')[1].split("]")[0])) == run.customers_scored


def test_the_rfm_page_shows_the_grid_and_every_segment(as_role, scored):
    _, run = scored
    html = as_role("marketer").get("/analytics/rfm").text
    counts = re.findall(r'<td class="heat-\d+"><strong>([\d,]+)</strong>', html)
    assert len(counts) == 25 and sum(int(c.replace(",", "")) for c in counts) == run.buyers
    assert "Champions" in html and "Can&#39;t lose them" in html and "Hibernating" in html


def test_the_cohort_page_shows_retention_and_revenue_heatmaps(as_role, scored):
    html = as_role("manager").get("/analytics/cohorts").text
    assert "Retention by acquisition month" in html and "Revenue by acquisition month (VND)" in html
    assert "100.0%" in html  # month 0 of every cohort
    retention, revenue = html.split("Revenue by acquisition month")
    assert retention.count('<table class="heatmap cohorts">') == 1
    filled = re.findall(r'<td class="heat-[^"n][^"]*">([^<]+)</td>', revenue)
    assert filled and "%" not in filled[0]  # the revenue heatmap has its own (money) cells


def test_the_fit_page_shows_the_histogram_tracking_and_parameters(as_role, scored):
    html = as_role("admin").get("/analytics/fit").text
    assert 'id="chart-histogram"' in html and 'id="chart-tracking"' in html
    assert "Model: BG/NBD" in html and "<dt>alpha</dt>" in html
    assert "too short for a holdout comparison" in html or "best:" in html


def test_the_pages_speak_vietnamese(as_role, user_factory, browser, scored):
    from tests.dashboard.conftest import log_in

    user_factory("marketer", email="vi@shop.vn", locale="vi")
    client = browser()
    log_in(client, "vi@shop.vn")
    assert "Giá trị dự báo 12 tháng tới" in client.get("/analytics/clv").text
    assert "Lưới R × FM" in client.get("/analytics/rfm").text


def test_the_360_scores_card_explains_the_scores_in_one_line(as_role, db, scored):
    best = _best(db)
    agent = as_role("agent")
    html = agent.get(f"/customers/{best.customer_id}/scores").text
    assert re.search(r"(Likely still active|May be drifting away|Probably lapsed) \(P\(alive\) [\d.]+%\): bought", html)
    assert "Predicted value (12 months)" in html and "Churn risk" in html
    assert f'hx-get="/customers/{best.customer_id}/scores"' in agent.get(f"/customers/{best.customer_id}").text


def test_the_360_says_not_enough_data_for_a_customer_without_orders(as_role, scored):
    book, _ = scored
    html = as_role("sales").get(f"/customers/{book.ids['idle-0']}/scores").text
    assert "Not enough data: no orders yet." in html and "Predicted value" not in html


def test_the_360_card_before_any_refresh_says_how_to_compute(as_role, shop):
    customer = shop.customer("Lê Văn Cường")
    assert "No scores yet" in as_role("agent").get(f"/customers/{customer.id}/scores").text


def test_the_api_gives_a_customers_scores_with_the_model_and_time(client, api_key_for, db, scored):
    best = _best(db)
    r = client.get(f"/api/v1/customers/{best.customer_id}/scores?locale=vi", headers=api_key_for("customers:read"))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["model"] == "bgnbd" and body["computed_at"].startswith("2025-09-01T05:00")
    assert body["predicted_clv_12m"] == best.predicted_clv_12m and body["churn_risk"] == pytest.approx(1 - body["p_alive"])
    assert body["explanation"].startswith(("Nhiều khả năng", "Có dấu hiệu", "Có lẽ"))


def test_the_api_says_not_enough_data_instead_of_numbers(client, api_key_for, scored):
    book, _ = scored
    r = client.get(f"/api/v1/customers/{book.ids['idle-0']}/scores", headers=api_key_for("customers:read"))
    assert r.json()["status"] == "not_enough_data" and r.json()["reason"] == "no_orders"
    assert r.json()["predicted_clv_12m"] is None and r.json()["p_alive"] is None


def test_the_api_gives_the_latest_run(client, api_key_for, scored):
    _, run = scored
    body = client.get("/api/v1/analytics/runs/latest", headers=api_key_for("customers:read")).json()
    assert body["id"] == run.id and body["model"] == "bgnbd" and set(body["params"]) >= {"r", "alpha", "a", "b"}
    assert body["customers_scored"] == run.customers_scored and body["customers_total"] == run.customers_total


def test_the_api_answers_404_before_any_refresh(client, api_key_for, shop):
    customer = shop.customer("Trần Thị Bích")
    headers = api_key_for("customers:read")
    assert client.get("/api/v1/analytics/runs/latest", headers=headers).status_code == 404
    r = client.get(f"/api/v1/customers/{customer.id}/scores", headers=headers)
    assert r.status_code == 404 and "clm analytics refresh" in r.json()["error"]["message"]
