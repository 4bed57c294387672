"""The journey builder in a real browser (Debian's chromium, Playwright, uvicorn; SQLite only): a marketer
builds a small journey (an event trigger, a wait, a message), validates it, saves it, activates it and
sees it active in the list; then the journey's page draws the flow."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import serve_in_thread
from tests.dashboard.conftest import cheap_hashing, user_factory  # noqa: F401 (fixtures)
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
        page = browser.new_context(locale="en-US", viewport={"width": 1400, "height": 1000}).new_page()
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        yield page
        browser.close()


def test_a_marketer_builds_validates_and_activates_a_journey_and_sees_it_active(page, server_url, db, user_factory,  # noqa: F811
                                                                                tmp_path):
    from playwright.sync_api import expect

    from clm.channels.templates import create_template

    create_template(db, key="welcome", channel="email", name="Lời chào",
                    variants={"vi": {"subject": "Chào {{ customer.name }}", "text": "Xin chào"}})
    db.commit()
    user_factory("marketer", email="lan@shop.vn")
    page.goto(f"{server_url}/journeys/new")
    page.get_by_label("Email").fill("lan@shop.vn")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server_url}/journeys/new")

    def rebuilt(action):  # a structural change re-renders the builder: wait until the new one is in place
        page.evaluate("document.getElementById('journey-builder').dataset.old = 'yes'")
        action()
        page.wait_for_function("() => { const f = document.getElementById('journey-builder');"
                               " return f && !f.dataset.old && !f.classList.contains('htmx-settling'); }")

    page.locator("input[name=name]").fill("Chào mừng khách mới")
    page.locator("input[name='t.event']").fill("Signed Up")
    rebuilt(lambda: page.locator("select[name='add.start']").select_option("wait"))
    expect(page.locator("#node-wait1")).to_be_visible()
    page.locator("input[name='n.0.days']").fill("2")
    rebuilt(lambda: page.locator("select[name='add.0.next']").select_option("send_message"))
    expect(page.locator("#node-send1")).to_be_visible()
    expect(page.locator("input[name='n.0.days']")).to_have_value("2")  # typed values survive the re-render
    expect(page.locator("input[name='t.event']")).to_have_value("Signed Up")

    rebuilt(lambda: page.get_by_role("button", name="Validate").click())
    expect(page.locator("#problems")).to_contain_text("node 'send1' (send_message): the action is missing its template")
    expect(page.locator("#node-send1")).to_have_class(re.compile(r"\binvalid\b"))
    rebuilt(lambda: page.locator("select[name='n.1.template']").select_option("welcome"))
    page.locator("input[name='n.1.label']").fill("Lời chào")
    rebuilt(lambda: page.get_by_role("button", name="Validate").click())
    expect(page.locator("#valid")).to_have_text("The journey is valid.")
    page.screenshot(path=str(tmp_path / "journey-builder.png"), full_page=True)

    page.get_by_role("button", name="Save journey").click()
    expect(page).to_have_url(re.compile(rf"{server_url}/journeys/\d+$"))
    expect(page.locator("#state")).to_have_text("Draft")
    expect(page.locator("#graph [data-node]")).to_have_count(3)
    expect(page.locator("#node-send1")).to_contain_text("Lời chào")
    page.get_by_role("button", name="Activate").click()
    expect(page.locator("#state")).to_have_text("Active")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-daily')")
    page.screenshot(path=str(tmp_path / "journey.png"), full_page=True)

    page.get_by_role("link", name="Journeys", exact=True).click()
    row = page.locator("#journeys tbody tr", has_text="Chào mừng khách mới")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("v1")
    assert page.problems == []


def test_a_marketer_filters_the_trigger_and_a_wait_for_an_event_renames_a_step_and_sees_it_saved(
        page, server_url, db, user_factory):  # noqa: F811
    from playwright.sync_api import expect

    from clm.journeys import service
    from clm.journeys.models import Journey

    journey = service.save_journey(db, name="Giỏ hàng bỏ quên", definition={
        "trigger": {"type": "event", "event": "Product Added"}, "start": "later",
        "nodes": [{"id": "later", "type": "wait_for_event", "event": "Order Completed", "timeout": {"hours": 4},
                   "next": "end", "timeout_next": "end"}, {"id": "end", "type": "exit"}]})
    db.commit()
    user_factory("marketer", email="lan@shop.vn")
    page.goto(f"{server_url}/journeys/{journey.id}/edit")
    page.get_by_label("Email").fill("lan@shop.vn")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server_url}/journeys/{journey.id}/edit")

    def rebuilt(action):
        page.evaluate("document.getElementById('journey-builder').dataset.old = 'yes'")
        action()
        page.wait_for_function("() => { const f = document.getElementById('journey-builder');"
                               " return f && !f.dataset.old && !f.classList.contains('htmx-settling'); }")

    trigger = page.locator("#trigger-filters")
    rebuilt(lambda: trigger.get_by_role("button", name="+ Property filter").click())
    trigger.locator("input[name='t.where.0.property']").fill("price")
    rebuilt(lambda: trigger.locator("select[name='t.where.0.jtype']").select_option("number"))
    rebuilt(lambda: trigger.locator("select[name='t.where.0.op']").select_option("gte"))
    page.locator("input[name='t.where.0.value']").fill("500000")
    node = page.locator("#node-later")
    rebuilt(lambda: node.get_by_role("button", name="+ Property filter").click())
    expect(page.locator("input[name='t.where.0.value']")).to_have_value("500000")  # kept through the re-render
    page.locator("input[name='n.0.where.0.property']").fill("currency")
    page.locator("input[name='n.0.where.0.value']").fill("VND")
    page.locator("input[name='n.0.rename']").fill("cho-mua")

    page.get_by_role("button", name="Save journey").click()
    expect(page).to_have_url(f"{server_url}/journeys/{journey.id}")
    expect(page.locator("#node-cho-mua")).to_be_visible()
    db.expire_all()
    saved = service.current_version(db, db.get(Journey, journey.id)).definition
    assert saved["trigger"]["where"] == [{"property": "price", "op": "gte", "value": 500000}]
    assert saved["start"] == "cho-mua"
    assert saved["nodes"][0]["where"] == [{"property": "currency", "op": "eq", "value": "VND"}]
    assert page.problems == []
