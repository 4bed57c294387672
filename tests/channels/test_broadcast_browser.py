"""A broadcast in a real browser (Debian's chromium, Playwright, uvicorn): a marketer composes a broadcast
to a segment, sends a test to herself, sends it; a worker run in the test delivers the mail to a local
aiosmtpd server; the report shows the sent count and draws its charts.

The server and the worker share a real SQLite file (not the rolled-back test connection), so that the
page's polling and the worker use separate connections, as they do in production."""

from __future__ import annotations

import os
import re

import pytest

from clm.access.users import create_user
from clm.channels import broadcasts, testsend
from clm.channels.sending import send_handler
from clm.channels.templates import create_template
from clm.customers.consent import record_consent
from clm.customers.models import Customer
from clm.db.engine import make_session_factory
from clm.jobs.runner import Registry, run_due
from clm.segments.service import change_list, save_segment
from tests.conftest import fresh_engine, serve_in_thread
from tests.dashboard.conftest import PASSWORD, cheap_hashing  # noqa: F401 (fixture)
from tests.dashboard.test_browser import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing: apt-get install chromium")


@pytest.fixture
def shop_factory(tmp_path):
    engine = fresh_engine("sqlite", tmp_path)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def server_url(shop_factory, channel_settings):
    from clm.web.app import create_app

    yield from serve_in_thread(create_app(channel_settings, shop_factory))


@pytest.fixture
def page(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(locale="en-US", viewport={"width": 1360, "height": 1000}).new_page()
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        yield page
        browser.close()


def seed(factory) -> None:
    """A marketer, the VIP list (two customers who agreed to email marketing, one who did not) and a template."""
    with factory() as s:
        create_user(s, email="lan@shop.vn", name="Lan", role="marketer", password=PASSWORD)
        people = []
        for email, name, agreed in (("an@example.vn", "Nguyễn Văn An", True), ("binh@example.vn", "Trần Thị Bình", True),
                                    ("chi@example.vn", "Lê Văn Chí", False)):
            c = Customer(email=email, full_name=name, given_name=name.split()[-1], traits={})
            s.add(c)
            s.flush()
            if agreed:
                record_consent(s, c.id, channel="email", purpose="marketing", granted=True, source="test")
            people.append(c.id)
        segment = save_segment(s, name="Khách VIP", kind="static")
        change_list(s, segment.id, add=people)
        create_template(s, key="tet-sale", channel="email", name="Tết sale", variants={
            "vi": {"subject": "{{ customer.given_name }} ơi, Tết sale!", "text": "Giảm 20% cho {{ customer.name }}."},
            "en": {"subject": "Tết sale, {{ customer.given_name }}!", "text": "20% off for {{ customer.name }}."}})
        s.commit()


def work(factory, settings) -> int:
    """One worker, run until nothing is due: the broadcast job, then its messages, then test sends."""
    registry = Registry()
    registry.register("channels.send", send_handler(settings))
    broadcasts.register(registry, settings)
    testsend.register(registry, settings)
    ran = 0
    while (n := run_due(factory, registry, "test-worker")):
        ran += n
    return ran


def test_a_marketer_composes_a_broadcast_sends_it_and_sees_its_report(page, server_url, shop_factory, channel_settings,
                                                                      smtp, tmp_path):
    from playwright.sync_api import expect

    sink, _ = smtp
    seed(shop_factory)
    page.goto(f"{server_url}/channels/broadcasts")
    page.get_by_label("Email").fill("lan@shop.vn")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server_url}/channels/broadcasts")
    expect(page.get_by_role("link", name="Messaging")).to_be_visible()

    page.get_by_role("link", name="New broadcast").click()
    page.get_by_label("Name").fill("Tết sale 2026")
    page.get_by_label("Template").select_option("tet-sale")
    page.get_by_label("Segment").select_option(label="Khách VIP (3 members)")
    expect(page.locator("#composer-preview")).to_contain_text("An ơi, Tết sale!")  # follows the choices
    page.get_by_label("Send the test to").fill("lan@shop.vn")
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#test-result")).to_contain_text("Queued")
    work(shop_factory, channel_settings)
    expect(page.locator("#test-result")).to_contain_text("Test sent")  # the page polled the job
    assert [m["To"] for m in sink.messages] == ["lan@shop.vn"]
    assert sink.messages[0]["Subject"] == "[Thử] An ơi, Tết sale!"
    page.screenshot(path=str(tmp_path / "composer.png"), full_page=True)

    page.get_by_role("button", name="Send", exact=True).click()
    expect(page).to_have_url(re.compile(rf"{server_url}/channels/broadcasts/\d+$"))
    expect(page.locator("#broadcast-status")).to_have_text("Scheduled")

    work(shop_factory, channel_settings)
    assert sorted(m["To"] for m in sink.messages[1:]) == ["an@example.vn", "binh@example.vn"]
    # The status and figures refresh themselves every 10 s while the broadcast is scheduled or sending.
    expect(page.locator("#fig-sent")).to_have_text("2", timeout=20_000)
    expect(page.locator("#broadcast-status")).to_have_text("Sending")
    expect(page.locator("#fig-recipients")).to_have_text("3")
    page.reload()  # the charts are drawn when the page loads
    expect(page.locator("#reasons")).to_contain_text("no consent recorded for email marketing")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-funnel') && Chart.getChart('chart-daily')")
    assert page.evaluate("Chart.getChart('chart-funnel').data.datasets[0].data[0]") == 2
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

    page.get_by_role("link", name="See its messages").click()
    expect(page.locator("#messages tbody tr")).to_have_count(3)
    assert page.problems == []
