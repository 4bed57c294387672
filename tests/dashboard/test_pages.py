"""What each page shows: overview figures, search and filters, the customer 360, settings."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import time_machine

from clm.access.models import ApiKey
from clm.customers.consent import record_consent
from clm.customers.merge import merge_customers
from clm.web.pages import customers as customers_page
from clm.web.pages.metrics import TTLCache, week_starts
from tests.dashboard.conftest import PASSWORD, log_in, token_of
from tests.dashboard.seed import seed_shop

NOW = datetime(2026, 3, 18, 5, 0, tzinfo=UTC)  # a Wednesday


@pytest.fixture
def seeded(db):
    with time_machine.travel(NOW, tick=False):  # for the lifecycle's clock inside the seeding
        return seed_shop(db, NOW)


@pytest.fixture
def vi(as_role, db):
    client = as_role("admin")
    client.post("/locale", data={"locale": "vi", "csrf_token": token_of(client)})
    return client


def test_an_empty_overview_says_how_to_get_customers_in(as_role):
    html = as_role("admin").get("/overview").text
    assert "No customers yet" in html and "write key" in html and "clm import customers FILE.csv" in html


def test_the_overview_shows_totals_stages_and_money_in_vietnamese(app, seeded, vi):
    app.state.dashboard_clock = lambda: NOW
    app.state.dashboard_cache.clear()  # logging in already showed the overview as of the real now
    r = vi.get("/overview")
    assert r.status_code == 200
    kpis = re.findall(r'class="kpi-value">([^<]+)<', r.text)
    assert kpis[0] == "6"
    assert kpis[1] == "6.720.000\xa0₫"  # every order of the last 12 weeks, net of refunds
    assert kpis[2] == "7"
    assert "Khách hàng theo giai đoạn" in r.text and "Phễu giai đoạn" in r.text
    assert 'hx-get="/overview/funnel"' in r.text
    funnel = vi.get("/overview/funnel", headers={"HX-Request": "true"}).text
    assert re.findall(r'class="badge stage-(\w+)"', funnel) == ["awareness", "consideration", "conversion",
                                                                 "retention", "loyalty"]
    assert 'href="/customers?stage=retention"' in r.text


def test_pages_report_their_server_time_and_forbid_outside_resources(seeded, as_role):
    r = as_role("admin").get("/overview")
    assert re.fullmatch(r"app;dur=\d+\.\d", r.headers["server-timing"])
    assert r.headers["x-render-time"].endswith("ms")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r'(src|href)="(https?:)?//', r.text)


def test_the_vendored_scripts_are_served_from_the_app(client):
    for path in ("/static/vendor/htmx/htmx.min.js", "/static/vendor/chartjs/chart.umd.min.js", "/static/app.css"):
        assert client.get(path).status_code == 200, path


def test_weeks_start_on_monday_in_the_business_time_zone():
    bounds = week_starts(NOW, "Asia/Ho_Chi_Minh", weeks=2)
    assert bounds[1] == datetime(2026, 3, 15, 17, 0, tzinfo=UTC)  # Monday 16 March, 00:00 in Hanoi
    assert [b.weekday() for b in bounds] == [6, 6, 6] and bounds[2] - bounds[0] == (bounds[1] - bounds[0]) * 2


def test_overview_figures_are_cached_for_a_minute():
    now = [0.0]
    cache, calls = TTLCache(60, clock=lambda: now[0]), []
    compute = lambda session: calls.append(session) or len(calls)  # noqa: E731
    assert cache.get_or_compute("k", compute, "db") == 1
    now[0] = 59
    assert cache.get_or_compute("k", compute, "db") == 1
    now[0] = 61
    assert cache.get_or_compute("k", compute, "db") == 2


def test_stale_figures_are_served_at_once_while_fresh_ones_are_computed_in_the_background():
    import threading

    now, done = [0.0], threading.Event()

    class Factory:
        def __call__(self):
            return self

        def __enter__(self):
            return "background session"

        def __exit__(self, *exc):
            done.set()

    cache = TTLCache(60, clock=lambda: now[0], session_factory=Factory())
    assert cache.get_or_compute("k", lambda session: session, "request session") == "request session"
    now[0] = 61
    assert cache.get_or_compute("k", lambda session: session, "request session") == "request session"
    assert done.wait(5)
    for _ in range(100):  # the thread stores the value right after closing its session
        if cache.get_or_compute("k", lambda session: session, "request session") == "background session":
            break
        threading.Event().wait(0.01)
    assert cache.get_or_compute("k", lambda session: session, "request session") == "background session"


def test_search_ignores_diacritics_and_case(seeded, as_role):
    html = as_role("agent").get("/customers", params={"q": "NGUYEN van a"}).text
    assert "Nguyễn Văn An" in html and "Trần Thị Bích" not in html


def test_filters_by_stage_and_city(seeded, as_role):
    client = as_role("sales")
    by_city = client.get("/customers", params={"city": "Hà Nội"}).text
    assert "Nguyễn Văn An" in by_city and "Phạm Thị Dung" in by_city and "Lê Văn Cường" not in by_city
    by_stage = client.get("/customers", params={"stage": "conversion"}).text
    assert "Lê Văn Cường" in by_stage and "Nguyễn Văn An" not in by_stage
    none = client.get("/customers", params={"q": "zzz"}).text
    assert "No customer matches" in none and "Clear the filters" in none


def test_the_list_pages_through_everyone_once(seeded, as_role, monkeypatch):
    monkeypatch.setattr(customers_page, "PAGE", 4)
    client = as_role("agent")
    first = client.get("/customers").text
    next_link = re.search(r'href="(/customers\?cursor=[^"]+)"', first).group(1)
    second = client.get(next_link.replace("&amp;", "&")).text
    names = re.findall(r'href="/customers/\d+">([^<]+)<', first) + re.findall(r'href="/customers/\d+">([^<]+)<', second)
    assert len(names) == len(set(names)) == 6
    assert "First page" in second and "Next page" not in second


def test_a_broken_page_link_says_so_instead_of_failing(seeded, as_role):
    r = as_role("agent").get("/customers", params={"cursor": "not-a-cursor"})
    assert r.status_code == 200 and "page link is out of date" in r.text


def test_the_customer_360_shows_profile_identities_consents_stages_and_one_timeline(seeded, db, vi):
    an = seeded.id_of("u-an")
    record_consent(db, an, channel="zalo", purpose="marketing", granted=True, source="form")
    db.commit()
    html = vi.get(f"/customers/{an}").text
    assert "Nguyễn Văn An" in html and "0912 345 678" in html and "an.nguyen@example.vn" in html
    assert "Mã người dùng" in html and "u-an" in html  # identities
    assert "zalo" in html and "đồng ý" in html  # consent in force
    assert "Lịch sử giai đoạn" in html and "Giữ chân" in html
    timeline = html[html.index('class="timeline"'):]
    orders = re.findall(r"Đơn hàng (DH-\d+)", timeline)
    assert len(orders) == 3 and orders == sorted(orders, reverse=True)  # newest first
    assert "1.250.000\xa0₫" in timeline and "1 × Áo dài lụa" in timeline
    assert "Xem trang Trang chủ" in timeline and "Cập nhật hồ sơ" in timeline


def test_the_timeline_loads_older_entries_on_request(seeded, as_role, monkeypatch):
    monkeypatch.setattr(customers_page, "TIMELINE_PAGE", 2)
    client = as_role("agent")
    an = seeded.id_of("u-an")
    html = client.get(f"/customers/{an}").text
    more = re.search(r'hx-get="([^"]+)"', html[html.index('id="tl-more"'):]).group(1).replace("&amp;", "&")
    older = client.get(more, headers={"HX-Request": "true"})
    assert older.status_code == 200 and "<html" not in older.text and older.text.count('class="tl tl-') == 2


def test_a_merged_customer_redirects_to_the_one_they_became_and_an_unknown_one_is_a_404_page(seeded, db, as_role):
    winner, loser = seeded.id_of("u-an"), seeded.id_of("u-em")
    merge_customers(db, winner, loser, reason="test")
    db.commit()
    client = as_role("agent")
    assert client.get(f"/customers/{loser}").headers["location"] == f"/customers/{winner}"
    missing = client.get("/customers/999999")
    assert missing.status_code == 404 and "Not found" in missing.text and "<html" in missing.text


def test_an_admin_creates_an_api_key_that_is_shown_once_and_works(as_role, db):
    client = as_role("admin")
    r = client.post("/settings/api-keys", data={"name": "kế toán", "scope": ["customers:read", "orders:read"],
                                                "csrf_token": token_of(client)})
    assert r.status_code == 201
    secret = re.search(r'id="new-secret">([^<]+)<', r.text).group(1)
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert secret not in client.get("/settings").text
    key_id = db.scalar(sa.select(ApiKey.id).where(ApiKey.name == "kế toán"))
    client.post(f"/settings/api-keys/{key_id}/revoke", data={"csrf_token": token_of(client)})
    assert client.get("/api/v1/customers", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_a_write_key_made_in_settings_lets_a_website_send_events(as_role, client):
    admin = as_role("admin")
    r = admin.post("/settings/write-keys", data={"name": "website", "csrf_token": token_of(admin)})
    secret = re.search(r'id="new-secret">([^<]+)<', r.text).group(1)
    assert client.post("/v1/identify", json={"userId": "w1", "traits": {"name": "Lý Thị Hoa"}},
                       auth=(secret, "")).status_code == 200


def test_an_api_key_without_scopes_or_name_is_explained(as_role):
    client = as_role("admin")
    r = client.post("/settings/api-keys", data={"name": "x", "csrf_token": token_of(client)})
    assert r.status_code == 422 and "Choose at least one scope" in r.text


def test_an_admin_adds_a_user_who_can_log_in_then_changes_their_role_and_deactivates_them(as_role, browser, db):
    from clm.access.models import User

    admin = as_role("admin")
    r = admin.post("/settings/users", data={"email": "hoa@shop.vn", "name": "Hoa", "role": "agent",
                                            "password": PASSWORD, "csrf_token": token_of(admin)})
    assert r.status_code == 201 and "hoa@shop.vn" in r.text
    hoa_browser = browser()
    assert log_in(hoa_browser, "hoa@shop.vn").headers["location"] == "/customers"
    hoa = db.scalar(sa.select(User).where(User.email == "hoa@shop.vn"))
    admin.post(f"/settings/users/{hoa.id}/role", data={"role": "marketer", "csrf_token": token_of(admin)})
    assert hoa_browser.get("/overview").status_code == 200
    admin.post(f"/settings/users/{hoa.id}/deactivate", data={"csrf_token": token_of(admin)})
    assert hoa_browser.get("/customers").status_code == 303


def test_a_bad_new_user_is_explained_naming_the_field(as_role):
    client = as_role("admin")
    r = client.post("/settings/users", data={"email": "hoa@shop.vn", "role": "agent", "password": "short",
                                             "csrf_token": token_of(client)})
    assert r.status_code == 422 and "Password: must be at least 10 characters long" in r.text


def test_the_last_admin_cannot_lock_everyone_out(as_role, db):
    from clm.access.models import User

    client = as_role("admin")
    me = db.scalar(sa.select(User.id).where(User.email == "admin@shop.vn"))
    r = client.post(f"/settings/users/{me}/deactivate", data={"csrf_token": token_of(client)})
    assert r.status_code == 422 and "last active admin" in r.text
    assert client.get("/settings").status_code == 200


def test_a_manager_sees_settings_without_the_buttons_that_change_them(as_role):
    html = as_role("manager").get("/settings").text
    assert "API keys" in html and "Users" in html
    assert 'action="/settings/api-keys"' not in html and "/revoke" not in html and 'action="/settings/users"' not in html
