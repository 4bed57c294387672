"""The segment builder in a real browser (Debian's chromium, Playwright, uvicorn; SQLite only): a marketer
builds a segment of two conditions, watches the live count follow each change, saves it and lands on its page."""

from __future__ import annotations

import os
import re

import pytest

from clm.lib.clock import utcnow
from tests.conftest import serve_in_thread
from tests.dashboard.conftest import cheap_hashing, user_factory  # noqa: F401 (fixtures)
from tests.dashboard.seed import seed_shop
from tests.dashboard.test_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium")


@pytest.fixture
def server_url(app, engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("the browser test runs once, on SQLite; the pages are tested on both backends")
    yield from serve_in_thread(app)


@pytest.fixture
def page(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(locale="en-US", viewport={"width": 1360, "height": 900}).new_page()
        page.set_default_timeout(30_000)  # the machine is shared: a loaded minute is not a failure
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        yield page
        browser.close()


def test_a_marketer_builds_a_two_condition_segment_sees_its_count_change_and_saves_it(page, server_url, db,
                                                                                      user_factory, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    seed_shop(db, utcnow())
    user_factory("marketer", email="lan@shop.vn")
    page.goto(f"{server_url}/segments/new")
    page.get_by_label("Email").fill("lan@shop.vn")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server_url}/segments/new")

    page.locator("input[name=name]").fill("Hà Nội repeat buyers")
    page.locator("input[name='r.0.value']").press_sequentially("Hà Nội")
    expect(page.locator("#count")).to_have_text("2")  # An and Dung live in Hà Nội
    expect(page.locator("#rules-text")).to_contain_text("city is “Hà Nội”")

    def rebuilt(action):  # a structural change re-renders the builder: wait until the new one is in place
        page.evaluate("document.getElementById('builder').dataset.old = 'yes'")
        action()
        page.wait_for_function("() => { const f = document.getElementById('builder');"
                               " return f && !f.dataset.old && !f.classList.contains('htmx-settling'); }")

    rebuilt(lambda: page.get_by_role("button", name="+ Condition").click())
    rebuilt(lambda: page.locator("select[name='r.1.type']").select_option("orders"))
    expect(page.locator("select[name='r.1.field']")).to_have_value("count")
    rebuilt(lambda: page.locator("select[name='r.1.op']").select_option("gte"))
    page.locator("input[name='r.1.value']").press_sequentially("2")
    expect(page.locator("#count")).to_have_text("1")  # of the two, only An ordered twice or more
    expect(page.locator("#rules-text")).to_contain_text("number of orders ≥ 2")
    page.screenshot(path=str(tmp_path / "builder.png"), full_page=True)

    page.get_by_role("button", name="Save segment").click()
    expect(page).to_have_url(re.compile(rf"{server_url}/segments/\d+$"))
    expect(page.locator(".topbar h1")).to_have_text("Hà Nội repeat buyers")
    expect(page.locator("#size")).to_have_text("1")
    expect(page.locator("#members tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Nguyễn Văn An").click()
    expect(page.locator(".topbar h1")).to_contain_text("Nguyễn Văn An")
    page.go_back()
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-size')")
    assert page.problems == []


def test_a_marketer_builds_a_segment_from_an_event_with_a_property_filter_and_a_custom_trait(page, server_url, db,
                                                                                            user_factory, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)

    from clm.tracking.ingest import ingest

    now = utcnow()
    seed_shop(db, now)
    ingest(db, [{"type": "identify", "userId": "u-an", "messageId": "tier-an", "traits": {"tier": "gold"}},
                {"type": "identify", "userId": "u-cuong", "messageId": "tier-cuong", "traits": {"tier": "silver"}}],
           received_at=now)
    db.commit()
    user_factory("marketer", email="lan@shop.vn")
    page.goto(f"{server_url}/segments/new")
    page.get_by_label("Email").fill("lan@shop.vn")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server_url}/segments/new")

    def rebuilt(action):
        page.evaluate("document.getElementById('builder').dataset.old = 'yes'")
        action()
        page.wait_for_function("() => { const f = document.getElementById('builder');"
                               " return f && !f.dataset.old && !f.classList.contains('htmx-settling'); }")

    page.locator("input[name=name]").fill("Big recent gold orders")
    rebuilt(lambda: page.locator("select[name='r.0.type']").select_option("event"))
    page.locator("input[name='r.0.name']").press_sequentially("Order Completed")
    expect(page.locator("#rules-text")).to_contain_text("Order Completed")
    rebuilt(lambda: page.get_by_role("button", name="+ Property filter").click())
    page.locator("input[name='r.0.where.0.property']").press_sequentially("total")
    rebuilt(lambda: page.locator("select[name='r.0.where.0.jtype']").select_option("number"))
    rebuilt(lambda: page.locator("select[name='r.0.where.0.op']").select_option("gte"))
    page.locator("input[name='r.0.where.0.value']").press_sequentially("800000")
    expect(page.locator("#count")).to_have_text("2")  # An (890,000 three days ago) and Cường (2,150,000)
    expect(page.locator("#rules-text")).to_contain_text("total ≥ 800000")

    rebuilt(lambda: page.get_by_role("button", name="+ Condition").click())
    rebuilt(lambda: page.locator("select[name='r.1.field']").select_option("traits"))
    page.locator("input[name='r.1.trait']").press_sequentially("tier")
    page.locator("input[name='r.1.value']").press_sequentially("gold")
    expect(page.locator("#count")).to_have_text("1")  # of the two, only An is gold
    expect(page.locator("#rules-text")).to_contain_text("trait tier is “gold”")

    rebuilt(lambda: page.get_by_role("button", name="+ Condition").click())
    rebuilt(lambda: page.locator("select[name='r.2.type']").select_option("stage"))
    expect(page.locator("input[name='r.2.stages'][value=retention]")).to_be_checked()
    rebuilt(lambda: page.locator("select[name='r.2.op']").select_option("not_in"))
    expect(page.locator("#count")).to_have_text("0")  # An is in retention
    rebuilt(lambda: page.locator("input[name='r.2.stages'][value=retention]").uncheck())
    rebuilt(lambda: page.locator("input[name='r.2.stages'][value=churned]").check())
    expect(page.locator("#count")).to_have_text("1")
    expect(page.locator("#rules-text")).to_contain_text("stage is not churned")
    page.screenshot(path=str(tmp_path / "builder-kinds.png"), full_page=True)

    page.get_by_role("button", name="Save segment").click()
    expect(page).to_have_url(re.compile(rf"{server_url}/segments/\d+$"))
    expect(page.locator("#size")).to_have_text("1")
    expect(page.get_by_role("link", name="Nguyễn Văn An")).to_be_visible()
    page.get_by_role("link", name="Edit").click()  # the saved tree opens in the builder as it was built
    expect(page.locator("input[name='r.0.where.0.value']")).to_have_value("800000")
    expect(page.locator("input[name='r.1.trait']")).to_have_value("tier")
    expect(page.locator("#count")).to_have_text("1")
    assert page.problems == []
