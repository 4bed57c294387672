"""The whole dashboard in a real browser: Debian's chromium driven by Playwright, against uvicorn.

Logs in, walks overview -> customers (a search without diacritics) -> a customer 360 -> back, first in
English (the browser's language), then switches to Vietnamese and walks again. Screenshots go to
$CLM_TEST_SCREENSHOTS or the test's temporary directory.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from clm.lib.clock import utcnow
from tests.conftest import serve_in_thread
from tests.dashboard.seed import seed_shop

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@pytest.fixture
def server_url(app, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("the browser walk runs once, on SQLite; the pages are tested on both backends")
    yield from serve_in_thread(app)


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("CLM_TEST_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(locale="en-US", viewport={"width": 1360, "height": 900})
        page = context.new_page()
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.on("request", lambda r: r.url.startswith(server_url) or r.url.startswith("data:")
                or page.problems.append(f"request outside the app: {r.url}"))
        yield page
        browser.close()


WORDS = {
    "en": {"overview": "Overview", "customers": "Customers", "by_stage": "Customers by stage", "funnel": "Stage funnel",
           "timeline": "Timeline", "profile": "Profile", "stage": "Retention", "switch": "Tiếng Việt"},
    "vi": {"overview": "Tổng quan", "customers": "Khách hàng", "by_stage": "Khách hàng theo giai đoạn",
           "funnel": "Phễu giai đoạn", "timeline": "Dòng thời gian", "profile": "Hồ sơ", "stage": "Giữ chân",
           "switch": "English"},
}


def walk(page, base: str, lang: str, shots: Path) -> None:
    from playwright.sync_api import expect

    w = WORDS[lang]
    page.goto(f"{base}/overview")
    expect(page.locator(".topbar h1")).to_have_text(w["overview"])
    expect(page.get_by_role("heading", name=w["by_stage"])).to_be_visible()
    expect(page.get_by_role("heading", name=w["funnel"])).to_be_visible()
    expect(page.locator(".funnel li")).to_have_count(5)  # fetched by HTMX after the page rendered
    expect(page.locator(".kpi-value").first).to_have_text("6")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-new') && Chart.getChart('chart-revenue')")
    page.screenshot(path=str(shots / f"overview-{lang}.png"), full_page=True)

    page.get_by_role("link", name=w["customers"], exact=True).click()
    expect(page.locator(".topbar h1")).to_have_text(w["customers"])
    expect(page.locator("#results tbody tr")).to_have_count(6)
    page.locator("input[name=q]").fill("nguyen van a")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/customers\?q=nguyen(\+|%20)van(\+|%20)a"))  # pushed: back comes here
    row = page.locator("#results tbody tr").first
    expect(row).to_contain_text("Nguyễn Văn An")
    expect(row).to_contain_text(w["stage"])
    page.screenshot(path=str(shots / f"customers-{lang}.png"), full_page=True)

    row.get_by_role("link", name="Nguyễn Văn An").click()
    expect(page.locator(".topbar h1")).to_contain_text("Nguyễn Văn An")
    expect(page.get_by_role("heading", name=w["timeline"])).to_be_visible()
    expect(page.get_by_role("heading", name=w["profile"])).to_be_visible()
    money = "1.250.000 ₫" if lang == "vi" else "₫1,250,000"
    expect(page.locator(".timeline")).to_contain_text(money)
    expect(page.locator(".timeline")).to_contain_text("Áo dài lụa")
    page.screenshot(path=str(shots / f"customer-360-{lang}.png"), full_page=True)

    page.go_back()
    expect(page.locator(".topbar h1")).to_have_text(w["customers"])
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page.locator("input[name=q]")).to_have_value("nguyen van a")


def test_a_user_logs_in_and_walks_the_dashboard_in_english_and_vietnamese(page, server_url, db, user_factory, shots):
    from playwright.sync_api import expect

    seed_shop(db, utcnow())
    user_factory("marketer", email="lan@shop.vn")

    page.goto(f"{server_url}/overview")
    expect(page).to_have_url(f"{server_url}/login?next=%2Foverview")
    page.screenshot(path=str(shots / "login-en.png"))
    page.get_by_label("Email").fill("lan@shop.vn")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server_url}/overview")

    walk(page, server_url, "en", shots)
    page.get_by_role("button", name=WORDS["en"]["switch"]).click()
    expect(page.locator(".nav")).to_contain_text("Tổng quan")
    walk(page, server_url, "vi", shots)

    page.get_by_role("button", name="Đăng xuất").click()
    expect(page).to_have_url(f"{server_url}/login")
    assert page.problems == []
    print(f"\nscreenshots in {shots}")
